// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <napi.h>
#include <uv.h>
#include <cstdint>
#include <string>
#include <vector>

struct ring_buffer;

namespace l7m {

// Consumes a pinned BPF ring buffer from the Node event loop: libuv polls the ring
// buffer's epoll fd and, when it is readable, the available records are drained
// without blocking and handed to the JS callback as one array of Buffers.
class RingBuffer : public Napi::ObjectWrap<RingBuffer> {
public:
	static Napi::Function Init(Napi::Env env);
	explicit RingBuffer(const Napi::CallbackInfo &info);
	~RingBuffer() override;

private:
	Napi::Value Ref(const Napi::CallbackInfo &info);
	Napi::Value Unref(const Napi::CallbackInfo &info);
	Napi::Value Close(const Napi::CallbackInfo &info);
	static int OnSample(void *ctx, void *data, size_t size);
	static void OnReadable(uv_poll_t *handle, int status, int events);
	void Drain();
	void Shutdown();

	napi_env env_ = nullptr;
	Napi::FunctionReference callback_;
	Napi::ObjectReference self_;  // keeps this object alive while the poll is active
	struct ring_buffer *rb_ = nullptr;
	int mapFd_ = -1;
	uv_poll_t *poll_ = nullptr;
	std::vector<std::vector<uint8_t>> pending_;
	std::unique_ptr<Napi::AsyncContext> asyncContext_;
};

}  // namespace l7m

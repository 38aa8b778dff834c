// SPDX-License-Identifier: Apache-2.0
#include "ringbuf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <unistd.h>

#include "errors.h"

namespace l7m {

// Records drained per wakeup; the rest stay in the ring and the poll fires again,
// so a flood cannot starve the event loop.
static const size_t kMaxBatch = 4096;

Napi::Function RingBuffer::Init(Napi::Env env)
{
	return DefineClass(env, "RingBuffer",
			   {
				   InstanceMethod("ref", &RingBuffer::Ref),
				   InstanceMethod("unref", &RingBuffer::Unref),
				   InstanceMethod("close", &RingBuffer::Close),
			   });
}

// new RingBuffer(pinPath, callback(records: Buffer[]))
RingBuffer::RingBuffer(const Napi::CallbackInfo &info) : Napi::ObjectWrap<RingBuffer>(info)
{
	Napi::Env env = info.Env();
	if (info.Length() < 2 || !info[0].IsString() || !info[1].IsFunction())
		throw Napi::TypeError::New(env, "RingBuffer(pinPath, callback): string and function expected");
	std::string path = info[0].As<Napi::String>();
	env_ = env;
	ResetLibbpfLog();
	mapFd_ = bpf_obj_get(path.c_str());
	if (mapFd_ < 0)
		ThrowErrno(env, "open pinned ring buffer " + path, errno);
	rb_ = ring_buffer__new(mapFd_, &RingBuffer::OnSample, this, nullptr);
	if (!rb_) {
		int err = errno;
		close(mapFd_);
		mapFd_ = -1;
		ThrowErrno(env, "create ring buffer consumer for " + path, err);
	}
	poll_ = new uv_poll_t;
	uv_loop_t *loop = nullptr;
	napi_get_uv_event_loop(env, &loop);
	int rc = uv_poll_init(loop, poll_, ring_buffer__epoll_fd(rb_));
	if (rc == 0) {
		poll_->data = this;
		rc = uv_poll_start(poll_, UV_READABLE, &RingBuffer::OnReadable);
	}
	if (rc != 0) {
		delete poll_;
		poll_ = nullptr;
		ring_buffer__free(rb_);
		rb_ = nullptr;
		close(mapFd_);
		mapFd_ = -1;
		throw Napi::Error::New(env, std::string("poll ring buffer: ") + uv_strerror(rc));
	}
	callback_ = Napi::Persistent(info[1].As<Napi::Function>());
	self_ = Napi::Persistent(info.This().As<Napi::Object>());
	asyncContext_ = std::make_unique<Napi::AsyncContext>(env, "l7mesh:ringbuf");
}

RingBuffer::~RingBuffer()
{
	Shutdown();
}

int RingBuffer::OnSample(void *ctx, void *data, size_t size)
{
	auto *self = static_cast<RingBuffer *>(ctx);
	auto *p = static_cast<uint8_t *>(data);
	self->pending_.emplace_back(p, p + size);
	// A negative return stops ring_buffer__consume early; the remaining records wait.
	return self->pending_.size() >= kMaxBatch ? -1 : 0;
}

void RingBuffer::OnReadable(uv_poll_t *handle, int status, int events)
{
	auto *self = static_cast<RingBuffer *>(handle->data);
	if (self && self->rb_)
		self->Drain();
}

void RingBuffer::Drain()
{
	Napi::Env env(env_);
	Napi::HandleScope scope(env);
	pending_.clear();
	int n = ring_buffer__consume(rb_);
	if (pending_.empty() && n >= 0)
		return;
	Napi::Array arr = Napi::Array::New(env, pending_.size());
	for (size_t i = 0; i < pending_.size(); i++)
		arr.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::Copy(env, pending_[i].data(), pending_[i].size()));
	pending_.clear();
	try {
		callback_.MakeCallback(env.Global(), {arr}, *asyncContext_);
	} catch (const Napi::Error &e) {
		napi_fatal_exception(env_, e.Value());
	}
}

Napi::Value RingBuffer::Ref(const Napi::CallbackInfo &info)
{
	if (poll_)
		uv_ref(reinterpret_cast<uv_handle_t *>(poll_));
	return info.Env().Undefined();
}

Napi::Value RingBuffer::Unref(const Napi::CallbackInfo &info)
{
	if (poll_)
		uv_unref(reinterpret_cast<uv_handle_t *>(poll_));
	return info.Env().Undefined();
}

void RingBuffer::Shutdown()
{
	if (poll_) {
		uv_poll_stop(poll_);
		poll_->data = nullptr;
		uv_close(reinterpret_cast<uv_handle_t *>(poll_),
			 [](uv_handle_t *h) { delete reinterpret_cast<uv_poll_t *>(h); });
		poll_ = nullptr;
	}
	if (rb_) {
		ring_buffer__free(rb_);
		rb_ = nullptr;
	}
	if (mapFd_ >= 0) {
		close(mapFd_);
		mapFd_ = -1;
	}
}

Napi::Value RingBuffer::Close(const Napi::CallbackInfo &info)
{
	Shutdown();
	if (!self_.IsEmpty())
		self_.Reset();
	if (!callback_.IsEmpty())
		callback_.Reset();
	return info.Env().Undefined();
}

}  // namespace l7m

// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <napi.h>
#include <cstdint>
#include <string>

namespace l7m {

// A map opened from its pin. Keys and values are raw Buffers of the exact sizes
// from the kernel; the typed codecs live in addon/layouts.ts. Per-CPU maps return
// one 8-byte-aligned slot per possible CPU.
class BpfMap : public Napi::ObjectWrap<BpfMap> {
public:
	static Napi::Function Init(Napi::Env env);
	explicit BpfMap(const Napi::CallbackInfo &info);
	~BpfMap() override;

private:
	Napi::Value Info(const Napi::CallbackInfo &info);
	Napi::Value Lookup(const Napi::CallbackInfo &info);
	Napi::Value Update(const Napi::CallbackInfo &info);
	Napi::Value Delete(const Napi::CallbackInfo &info);
	Napi::Value Keys(const Napi::CallbackInfo &info);
	Napi::Value UpdateBatch(const Napi::CallbackInfo &info);
	Napi::Value Close(const Napi::CallbackInfo &info);
	void CheckOpen(Napi::Env env);
	Napi::Buffer<uint8_t> SizedBuffer(Napi::Env env, const Napi::Value &v, size_t size, const char *what);

	int fd_ = -1;
	std::string path_;
	uint32_t type_ = 0, keySize_ = 0, valueSize_ = 0, maxEntries_ = 0, flags_ = 0, id_ = 0;
	size_t valueBufSize_ = 0;
};

}  // namespace l7m

// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <napi.h>

struct bpf_object;

namespace l7m {

// One BPF object file through libbpf's lifecycle: open, (pin paths), load, attach,
// close. The object owns the loaded programs until close; attachments are pinned
// links and outlive it.
class BpfObject : public Napi::ObjectWrap<BpfObject> {
public:
	static Napi::Function Init(Napi::Env env);
	explicit BpfObject(const Napi::CallbackInfo &info);
	~BpfObject() override;

private:
	Napi::Value Programs(const Napi::CallbackInfo &info);
	Napi::Value Maps(const Napi::CallbackInfo &info);
	Napi::Value SetMapPinDir(const Napi::CallbackInfo &info);
	Napi::Value Load(const Napi::CallbackInfo &info);
	Napi::Value AttachCgroup(const Napi::CallbackInfo &info);
	Napi::Value Close(const Napi::CallbackInfo &info);
	void Require(Napi::Env env, bool loaded);

	struct bpf_object *obj_ = nullptr;
	bool loaded_ = false;
};

}  // namespace l7m

// SPDX-License-Identifier: Apache-2.0
#include "links.h"

#include <bpf/bpf.h>
#include <cerrno>
#include <cstring>
#include <string>
#include <unistd.h>

#include "errors.h"

namespace l7m {

static std::string PathArg(const Napi::CallbackInfo &info, const char *fn)
{
	if (info.Length() < 1 || !info[0].IsString())
		throw Napi::TypeError::New(info.Env(), std::string(fn) + "(pinPath): pinPath must be a string");
	return info[0].As<Napi::String>();
}

Napi::Value LinkDetach(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	std::string pin = PathArg(info, "linkDetach");
	ResetLibbpfLog();
	int fd = bpf_obj_get(pin.c_str());
	if (fd < 0)
		ThrowErrno(env, "open pinned link " + pin, errno);
	int err = bpf_link_detach(fd);
	int saved = errno;
	close(fd);
	if (err)
		ThrowErrno(env, "detach link " + pin, saved);
	if (unlink(pin.c_str()) != 0)
		ThrowErrno(env, "remove link pin " + pin, errno);
	return env.Undefined();
}

Napi::Value LinkInfo(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	std::string pin = PathArg(info, "linkInfo");
	ResetLibbpfLog();
	int fd = bpf_obj_get(pin.c_str());
	if (fd < 0)
		ThrowErrno(env, "open pinned link " + pin, errno);
	struct bpf_link_info li;
	memset(&li, 0, sizeof(li));
	__u32 len = sizeof(li);
	int err = bpf_obj_get_info_by_fd(fd, &li, &len);
	int saved = errno;
	close(fd);
	if (err)
		ThrowErrno(env, "query link " + pin, saved);
	Napi::Object o = Napi::Object::New(env);
	o.Set("id", static_cast<double>(li.id));
	o.Set("progId", static_cast<double>(li.prog_id));
	o.Set("type", static_cast<double>(li.type));
	if (li.type == BPF_LINK_TYPE_CGROUP) {
		o.Set("cgroupId", Napi::BigInt::New(env, static_cast<uint64_t>(li.cgroup.cgroup_id)));
		o.Set("attachType", static_cast<double>(li.cgroup.attach_type));
	}
	return o;
}

}  // namespace l7m

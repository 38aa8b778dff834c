// SPDX-License-Identifier: Apache-2.0
#include "object.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"

namespace l7m {

Napi::Function BpfObject::Init(Napi::Env env)
{
	return DefineClass(env, "BpfObject",
			   {
				   InstanceMethod("programs", &BpfObject::Programs),
				   InstanceMethod("maps", &BpfObject::Maps),
				   InstanceMethod("setMapPinDir", &BpfObject::SetMapPinDir),
				   InstanceMethod("load", &BpfObject::Load),
				   InstanceMethod("attachCgroup", &BpfObject::AttachCgroup),
				   InstanceMethod("close", &BpfObject::Close),
			   });
}

BpfObject::BpfObject(const Napi::CallbackInfo &info) : Napi::ObjectWrap<BpfObject>(info)
{
	Napi::Env env = info.Env();
	if (info.Length() < 1 || !info[0].IsString())
		throw Napi::TypeError::New(env, "BpfObject(path): path must be a string");
	std::string path = info[0].As<Napi::String>();
	ResetLibbpfLog();
	obj_ = bpf_object__open_file(path.c_str(), nullptr);
	if (!obj_) {
		int err = errno;
		obj_ = nullptr;
		ThrowErrno(env, "open BPF object " + path, err);
	}
}

BpfObject::~BpfObject()
{
	if (obj_)
		bpf_object__close(obj_);
}

void BpfObject::Require(Napi::Env env, bool loaded)
{
	if (!obj_)
		throw Napi::Error::New(env, "BPF object is closed");
	if (loaded && !loaded_)
		throw Napi::Error::New(env, "BPF object is not loaded yet");
	if (!loaded && loaded_)
		throw Napi::Error::New(env, "BPF object is already loaded");
}

Napi::Value BpfObject::Programs(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (!obj_)
		throw Napi::Error::New(env, "BPF object is closed");
	Napi::Array out = Napi::Array::New(env);
	struct bpf_program *prog;
	uint32_t i = 0;
	bpf_object__for_each_program(prog, obj_)
	{
		Napi::Object p = Napi::Object::New(env);
		p.Set("name", bpf_program__name(prog));
		p.Set("section", bpf_program__section_name(prog));
		out.Set(i++, p);
	}
	return out;
}

Napi::Value BpfObject::Maps(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (!obj_)
		throw Napi::Error::New(env, "BPF object is closed");
	Napi::Array out = Napi::Array::New(env);
	struct bpf_map *map;
	uint32_t i = 0;
	bpf_object__for_each_map(map, obj_)
	{
		Napi::Object m = Napi::Object::New(env);
		m.Set("name", bpf_map__name(map));
		m.Set("type", static_cast<double>(bpf_map__type(map)));
		m.Set("keySize", static_cast<double>(bpf_map__key_size(map)));
		m.Set("valueSize", static_cast<double>(bpf_map__value_size(map)));
		m.Set("maxEntries", static_cast<double>(bpf_map__max_entries(map)));
		const char *pin = bpf_map__pin_path(map);
		m.Set("pinPath", pin ? Napi::Value(Napi::String::New(env, pin)) : env.Null());
		out.Set(i++, m);
	}
	return out;
}

// Every map gets <dir>/<name>: at load, libbpf reuses a compatible pinned map (this is
// how a restarted agent adopts the state) or creates and pins a new one.
Napi::Value BpfObject::SetMapPinDir(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Require(env, false);
	if (info.Length() < 1 || !info[0].IsString())
		throw Napi::TypeError::New(env, "setMapPinDir(dir): dir must be a string");
	std::string dir = info[0].As<Napi::String>();
	struct bpf_map *map;
	bpf_object__for_each_map(map, obj_)
	{
		std::string name = bpf_map__name(map);
		if (name.empty() || name[0] == '.')
			continue;  // internal .rodata/.bss maps belong to this object only
		ResetLibbpfLog();
		int err = bpf_map__set_pin_path(map, (dir + "/" + name).c_str());
		if (err)
			ThrowErrno(env, "set pin path of map " + name, err);
	}
	return env.Undefined();
}

Napi::Value BpfObject::Load(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Require(env, false);
	ResetLibbpfLog();
	int err = bpf_object__load(obj_);
	if (err)
		ThrowErrno(env, "load BPF object", err);
	loaded_ = true;
	return env.Undefined();
}

// attachCgroup(program, cgroupDir, linkPinPath) -> "created" | "replaced".
// With a link already pinned at linkPinPath the program is swapped in place
// (BPF_LINK_UPDATE), so the cgroup is never without a program.
Napi::Value BpfObject::AttachCgroup(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Require(env, true);
	if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsString())
		throw Napi::TypeError::New(env, "attachCgroup(program, cgroupDir, linkPinPath): strings expected");
	std::string progName = info[0].As<Napi::String>();
	std::string cgroup = info[1].As<Napi::String>();
	std::string pin = info[2].As<Napi::String>();

	struct bpf_program *prog = bpf_object__find_program_by_name(obj_, progName.c_str());
	if (!prog)
		ThrowErrno(env, "find program " + progName, ENOENT);

	struct stat st;
	if (stat(pin.c_str(), &st) == 0) {
		ResetLibbpfLog();
		struct bpf_link *link = bpf_link__open(pin.c_str());
		if (!link)
			ThrowErrno(env, "open pinned link " + pin, errno);
		int err = bpf_link__update_program(link, prog);
		bpf_link__disconnect(link);
		bpf_link__destroy(link);
		if (err)
			ThrowErrno(env, "replace program " + progName + " in link " + pin, err);
		return Napi::String::New(env, "replaced");
	}

	int cgfd = open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0)
		ThrowErrno(env, "open cgroup " + cgroup, errno);
	ResetLibbpfLog();
	struct bpf_link *link = bpf_program__attach_cgroup(prog, cgfd);
	int attachErr = link ? 0 : errno;
	close(cgfd);
	if (!link)
		ThrowErrno(env, "attach " + progName + " to cgroup " + cgroup, attachErr);
	int err = bpf_link__pin(link, pin.c_str());
	if (err) {
		bpf_link__destroy(link);  // not pinned: detaches, nothing half-applied
		ThrowErrno(env, "pin link of " + progName + " at " + pin, err);
	}
	bpf_link__disconnect(link);  // the pin keeps the attachment alive
	bpf_link__destroy(link);
	return Napi::String::New(env, "created");
}

Napi::Value BpfObject::Close(const Napi::CallbackInfo &info)
{
	if (obj_) {
		bpf_object__close(obj_);
		obj_ = nullptr;
	}
	return info.Env().Undefined();
}

}  // namespace l7m

// SPDX-License-Identifier: Apache-2.0
#include "map.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstring>
#include <unistd.h>
#include <vector>

#include "errors.h"

namespace l7m {

Napi::Function BpfMap::Init(Napi::Env env)
{
	return DefineClass(env, "BpfMap",
			   {
				   InstanceMethod("info", &BpfMap::Info),
				   InstanceMethod("lookup", &BpfMap::Lookup),
				   InstanceMethod("update", &BpfMap::Update),
				   InstanceMethod("delete", &BpfMap::Delete),
				   InstanceMethod("keys", &BpfMap::Keys),
				   InstanceMethod("updateBatch", &BpfMap::UpdateBatch),
				   InstanceMethod("close", &BpfMap::Close),
			   });
}

static bool IsPerCpu(uint32_t type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

BpfMap::BpfMap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<BpfMap>(info)
{
	Napi::Env env = info.Env();
	if (info.Length() < 1 || !info[0].IsString())
		throw Napi::TypeError::New(env, "BpfMap(pinPath): pinPath must be a string");
	path_ = info[0].As<Napi::String>();
	ResetLibbpfLog();
	fd_ = bpf_obj_get(path_.c_str());
	if (fd_ < 0)
		ThrowErrno(env, "open pinned map " + path_, errno);
	struct bpf_map_info mi;
	memset(&mi, 0, sizeof(mi));
	__u32 len = sizeof(mi);
	if (bpf_obj_get_info_by_fd(fd_, &mi, &len) != 0) {
		int err = errno;
		close(fd_);
		fd_ = -1;
		ThrowErrno(env, "query map " + path_, err);
	}
	type_ = mi.type;
	keySize_ = mi.key_size;
	valueSize_ = mi.value_size;
	maxEntries_ = mi.max_entries;
	flags_ = mi.map_flags;
	id_ = mi.id;
	valueBufSize_ = valueSize_;
	if (IsPerCpu(type_)) {
		int ncpu = libbpf_num_possible_cpus();
		if (ncpu < 0) {
			close(fd_);
			fd_ = -1;
			ThrowErrno(env, "count possible CPUs", ncpu);
		}
		valueBufSize_ = ((valueSize_ + 7) / 8) * 8 * static_cast<size_t>(ncpu);
	}
}

BpfMap::~BpfMap()
{
	if (fd_ >= 0)
		close(fd_);
}

void BpfMap::CheckOpen(Napi::Env env)
{
	if (fd_ < 0)
		throw Napi::Error::New(env, "map " + path_ + " is closed");
}

Napi::Buffer<uint8_t> BpfMap::SizedBuffer(Napi::Env env, const Napi::Value &v, size_t size, const char *what)
{
	if (!v.IsBuffer())
		throw Napi::TypeError::New(env, std::string(what) + " must be a Buffer");
	auto b = v.As<Napi::Buffer<uint8_t>>();
	if (b.Length() != size)
		throw Napi::RangeError::New(env, std::string(what) + " of map " + path_ + " must be " +
							 std::to_string(size) + " bytes, got " +
							 std::to_string(b.Length()));
	return b;
}

Napi::Value BpfMap::Info(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	CheckOpen(env);
	Napi::Object o = Napi::Object::New(env);
	o.Set("id", static_cast<double>(id_));
	o.Set("type", static_cast<double>(type_));
	o.Set("keySize", static_cast<double>(keySize_));
	o.Set("valueSize", static_cast<double>(valueSize_));
	o.Set("valueBufferSize", static_cast<double>(valueBufSize_));
	o.Set("maxEntries", static_cast<double>(maxEntries_));
	o.Set("flags", static_cast<double>(flags_));
	o.Set("path", path_);
	return o;
}

Napi::Value BpfMap::Lookup(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	CheckOpen(env);
	auto key = SizedBuffer(env, info[0], keySize_, "key");
	std::vector<uint8_t> val(valueBufSize_);
	if (bpf_map_lookup_elem(fd_, key.Data(), val.data()) != 0) {
		if (errno == ENOENT)
			return env.Null();
		ThrowErrno(env, "lookup in map " + path_, errno);
	}
	return Napi::Buffer<uint8_t>::Copy(env, val.data(), val.size());
}

// update(key, value, flags?) with flags BPF_ANY (0), BPF_NOEXIST (1), BPF_EXIST (2).
Napi::Value BpfMap::Update(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	CheckOpen(env);
	auto key = SizedBuffer(env, info[0], keySize_, "key");
	auto val = SizedBuffer(env, info[1], valueBufSize_, "value");
	uint64_t flags = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : 0;
	if (bpf_map_update_elem(fd_, key.Data(), val.Data(), flags) != 0)
		ThrowErrno(env, "update map " + path_, errno);
	return env.Undefined();
}

// delete(key) -> true when an entry was removed, false when there was none.
Napi::Value BpfMap::Delete(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	CheckOpen(env);
	auto key = SizedBuffer(env, info[0], keySize_, "key");
	if (bpf_map_delete_elem(fd_, key.Data()) != 0) {
		if (errno == ENOENT)
			return Napi::Boolean::New(env, false);
		ThrowErrno(env, "delete from map " + path_, errno);
	}
	return Napi::Boolean::New(env, true);
}

// keys() -> Buffer[]; bounded by max_entries so a map changing underneath cannot loop.
Napi::Value BpfMap::Keys(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	CheckOpen(env);
	Napi::Array out = Napi::Array::New(env);
	std::vector<uint8_t> cur(keySize_), next(keySize_);
	bool first = true;
	uint32_t n = 0;
	while (n <= maxEntries_) {
		int rc = bpf_map_get_next_key(fd_, first ? nullptr : cur.data(), next.data());
		if (rc != 0) {
			if (errno == ENOENT)
				break;
			ThrowErrno(env, "iterate map " + path_, errno);
		}
		out.Set(n++, Napi::Buffer<uint8_t>::Copy(env, next.data(), next.size()));
		cur.swap(next);
		first = false;
	}
	return out;
}

// updateBatch(keys, values, flags?) -> number applied. keys/values are the
// concatenated fixed-size elements. The kernel applies them in order and stops at the
// first failure; the error carries how many went in.
Napi::Value BpfMap::UpdateBatch(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	CheckOpen(env);
	if (!info[0].IsBuffer() || !info[1].IsBuffer())
		throw Napi::TypeError::New(env, "updateBatch(keys, values): Buffers expected");
	auto keys = info[0].As<Napi::Buffer<uint8_t>>();
	auto vals = info[1].As<Napi::Buffer<uint8_t>>();
	if (keys.Length() % keySize_ != 0)
		throw Napi::RangeError::New(env, "keys length is not a multiple of the key size " +
							 std::to_string(keySize_));
	__u32 count = keys.Length() / keySize_;
	if (vals.Length() != count * valueBufSize_)
		throw Napi::RangeError::New(env, "values length must be " + std::to_string(count * valueBufSize_));
	if (count == 0)
		return Napi::Number::New(env, 0);
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	opts.elem_flags = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : 0;
	__u32 done = count;
	if (bpf_map_update_batch(fd_, keys.Data(), vals.Data(), &done, &opts) != 0) {
		int err = errno;
		try {
			ThrowErrno(env, "batch update of map " + path_ + " (" + std::to_string(done) + " of " +
						std::to_string(count) + " applied)", err);
		} catch (Napi::Error &e) {
			e.Set("applied", Napi::Number::New(env, done));
			throw;
		}
	}
	return Napi::Number::New(env, done);
}

Napi::Value BpfMap::Close(const Napi::CallbackInfo &info)
{
	if (fd_ >= 0) {
		close(fd_);
		fd_ = -1;
	}
	return info.Env().Undefined();
}

}  // namespace l7m

// SPDX-License-Identifier: Apache-2.0
// l7mesh's libbpf binding: objects, pinned links, pinned maps, ring buffers.
#include <napi.h>
#include <bpf/libbpf.h>

#include "errors.h"
#include "links.h"
#include "map.h"
#include "object.h"
#include "ringbuf.h"

static Napi::Object InitModule(Napi::Env env, Napi::Object exports)
{
	l7m::InstallLibbpfLogger();
	exports.Set("BpfObject", l7m::BpfObject::Init(env));
	exports.Set("BpfMap", l7m::BpfMap::Init(env));
	exports.Set("RingBuffer", l7m::RingBuffer::Init(env));
	exports.Set("linkDetach", Napi::Function::New(env, l7m::LinkDetach, "linkDetach"));
	exports.Set("linkInfo", Napi::Function::New(env, l7m::LinkInfo, "linkInfo"));
	exports.Set("numPossibleCpus", Napi::Function::New(env, [](const Napi::CallbackInfo &info) {
		return Napi::Number::New(info.Env(), libbpf_num_possible_cpus());
	}));
	exports.Set("libbpfVersion", Napi::String::New(env, std::to_string(libbpf_major_version()) + "." +
							     std::to_string(libbpf_minor_version())));
	return exports;
}

NODE_API_MODULE(l7mesh_bpf, InitModule)

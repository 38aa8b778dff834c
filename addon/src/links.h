// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <napi.h>

namespace l7m {
// linkDetach(pinPath): detaches the pinned cgroup link and removes the pin.
Napi::Value LinkDetach(const Napi::CallbackInfo &info);
// linkInfo(pinPath) -> { id, progId, type, attachType, cgroupId }
Napi::Value LinkInfo(const Napi::CallbackInfo &info);
// progInfo(id) is not needed: link info carries the program id.
}  // namespace l7m

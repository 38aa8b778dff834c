// SPDX-License-Identifier: Apache-2.0
// JS errors that carry errno and the messages libbpf printed during the failed call.
#pragma once
#include <napi.h>
#include <string>

namespace l7m {

// Installs the libbpf print hook that captures messages for error reports.
void InstallLibbpfLogger();
// Clears the captured libbpf messages; call before each libbpf operation.
void ResetLibbpfLog();
// Throws a JS Error: "<what>: <strerror> (errno N)" plus libbpf's messages, with
// properties errno (number), code ("EPERM", ...) and libbpfLog (string).
[[noreturn]] void ThrowErrno(Napi::Env env, const std::string &what, int err);

}  // namespace l7m

// SPDX-License-Identifier: Apache-2.0
#include "errors.h"

#include <bpf/libbpf.h>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace l7m {
namespace {

// libbpf prints from the calling thread; all our libbpf calls run on the JS thread.
std::string g_log;
const size_t kMaxLog = 8192;

int CaptureLibbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	char buf[1024];
	int n = vsnprintf(buf, sizeof(buf), fmt, args);
	if (n > 0 && g_log.size() < kMaxLog)
		g_log.append(buf, std::min<size_t>(n, sizeof(buf) - 1));
	return 0;
}

const char *ErrnoName(int err)
{
	switch (err) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINVAL: return "EINVAL";
	case EEXIST: return "EEXIST";
	case E2BIG: return "E2BIG";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EBADF: return "EBADF";
	case EBUSY: return "EBUSY";
	case ENOSPC: return "ENOSPC";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ENOTDIR: return "ENOTDIR";
	case ESRCH: return "ESRCH";
	default: return "EUNKNOWN";
	}
}

}  // namespace

void InstallLibbpfLogger()
{
	libbpf_set_print(CaptureLibbpf);
}

void ResetLibbpfLog()
{
	g_log.clear();
}

void ThrowErrno(Napi::Env env, const std::string &what, int err)
{
	if (err < 0)
		err = -err;
	std::string msg = what + ": " + strerror(err) + " (errno " + std::to_string(err) + ")";
	std::string log = g_log;
	while (!log.empty() && (log.back() == '\n' || log.back() == ' '))
		log.pop_back();
	if (!log.empty()) {
		std::string oneLine;
		for (char c : log)
			oneLine += c == '\n' ? std::string(" | ") : std::string(1, c);
		msg += " [" + oneLine + "]";
	}
	Napi::Error e = Napi::Error::New(env, msg);
	e.Set("errno", Napi::Number::New(env, err));
	e.Set("code", Napi::String::New(env, ErrnoName(err)));
	e.Set("libbpfLog", Napi::String::New(env, log));
	g_log.clear();
	throw e;
}

}  // namespace l7m

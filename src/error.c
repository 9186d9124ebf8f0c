#include "scratchnet/error.h"

#include <stdarg.h>
#include <stdio.h>

int sn_fail(sn_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

const char *sn_status_name(int code)
{
    switch (code) {
    case SN_OK: return "ok";
    case SN_ENOMEM: return "out of memory";
    case SN_EIO: return "I/O error";
    case SN_EFORMAT: return "bad file format";
    case SN_EINVAL: return "invalid argument";
    case SN_EUNSUPPORTED: return "unsupported";
    default: return "unknown error";
    }
}

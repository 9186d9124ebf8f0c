/* scratchnet — error reporting.
 * Library functions never print and never exit. A failing call returns a negative
 * sn_status and, when the caller passes an sn_error, fills it with one sentence that
 * names the file or value, what was expected and what was found. */
#ifndef SCRATCHNET_ERROR_H
#define SCRATCHNET_ERROR_H

typedef enum sn_status {
    SN_OK = 0,
    SN_ENOMEM = -1,      /* allocation failed */
    SN_EIO = -2,         /* open/read/write/rename failed */
    SN_EFORMAT = -3,     /* file content is not what it claims (bad magic, truncated, CRC) */
    SN_EINVAL = -4,      /* bad argument value */
    SN_EUNSUPPORTED = -5 /* valid request this build or CPU cannot serve */
} sn_status;

typedef struct sn_error {
    int code;
    char msg[512];
} sn_error;

/* Fills err (may be NULL) with a printf-style message and returns code. */
int sn_fail(sn_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif

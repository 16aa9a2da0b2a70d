/*
 * vmbus/errno.h - error codes of the whole stack (STYLE 7).
 *
 * Every fallible call returns 0 or a negative code below. Values are Linux
 * errno numbers so a posix port or a Linux host can pass them through; the
 * freestanding core cannot include <errno.h>, hence its own names.
 *
 * Fixed meanings:
 *   -VMBUS_EAGAIN     ring empty or full; transient, try again.
 *   -VMBUS_ENOBUFS    caller's buffer too small; the required size comes
 *                     back through the in/out length argument.
 *   -VMBUS_EPROTO     the peer broke the protocol; the channel is now dead
 *                     (BROKEN) and the event was logged and counted.
 *   -VMBUS_ENODEV     rescinded, closed, or the partition is gone.
 *   -VMBUS_ETIMEDOUT  a bounded wait expired.
 *   -VMBUS_ENOMEM     allocation failed.
 *   -VMBUS_EINVAL     a caller bug (bad argument); never a peer fault.
 *   -VMBUS_EISCONN    failed, and the memory is still shared with the other
 *                     side: the caller must not free or reuse it.
 * Drivers document their other codes (a write-protected disk, for one, is
 * -VMBUS_EPERM: vmbus/storvsc.h).
 */
#ifndef VMBUS_ERRNO_H
#define VMBUS_ERRNO_H

#define VMBUS_EPERM      1
#define VMBUS_ENOENT     2
#define VMBUS_EIO        5
#define VMBUS_EAGAIN     11
#define VMBUS_ENOMEM     12
#define VMBUS_EFAULT     14
#define VMBUS_EBUSY      16
#define VMBUS_EEXIST     17
#define VMBUS_ENODEV     19
#define VMBUS_EINVAL     22
#define VMBUS_ENOSPC     28
#define VMBUS_ERANGE     34
#define VMBUS_ENOSYS     38
#define VMBUS_EMSGSIZE   90
#define VMBUS_EPROTO     71
#define VMBUS_EOVERFLOW  75
#define VMBUS_EOPNOTSUPP 95
#define VMBUS_ENOBUFS    105
#define VMBUS_EISCONN    106
#define VMBUS_ETIMEDOUT  110
#define VMBUS_ECANCELED  125

#endif /* VMBUS_ERRNO_H */

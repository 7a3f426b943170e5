/* preadv2(RWF_NOWAIT) with its outcomes classified, shared by block_io.c and verified_read.c. */
#ifndef DISKLESS_BLOCK_IO_H
#define DISKLESS_BLOCK_IO_H
#include <sys/types.h>
#include <sys/uio.h>

#define NO_WAIT_NOT_CACHED (-1)  /* EAGAIN: nothing of it is in the page cache */
#define NO_WAIT_UNSUPPORTED (-2) /* EOPNOTSUPP/ENOSYS: the file system refuses RWF_NOWAIT */
#define NO_WAIT_ERROR (-3)       /* anything else: errno says what */

/* Bytes read (possibly short: only part cached, or end of file), or one of the codes above. EINTR is retried. */
ssize_t preadv_no_wait(int fd, const struct iovec *iov, int count, off_t position);
#endif

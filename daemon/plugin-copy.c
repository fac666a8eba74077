/*
 * plugin-copy.c - the private copy a plugin is loaded from.
 *
 * A plugin is never mapped from its file.  `cp new.so old.so` rewrites the
 * file in place, and code mapped from it would change or vanish under the
 * running daemon (SIGSEGV, SIGBUS).  So the file is read once into a sealed
 * memfd, checked to be a whole ELF shared object (a file cut short would make
 * the dynamic loader fault instead of fail), and dlopen()ed as
 * /proc/self/fd/N.  Whatever happens to the file afterwards touches nothing
 * that runs; the file's own path is what messages name.
 */
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dagd.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

/* Read all of fd into a new memfd, named for the file (/proc/PID/maps shows
 * "/memfd:local.so"); returns it, or a negative errno. */
static int copy_to_memfd(int fd, const char *path, off_t *ret_size)
{
	_cleanup_close_ int mfd = -EBADF;
	const char *base = strrchr(path, '/');
	char buf[64 * 1024], name[64];
	off_t size = 0;
	ssize_t n;

	snprintf(name, sizeof(name), "%s", base ? base + 1 : path);
	/* MFD_EXEC: its code will be mapped executable; kernels before 6.3
	 * do not know the flag and allow that anyway */
	mfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (mfd < 0 && errno == EINVAL)
		mfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return errorf(-errno, "%s: cannot make a private copy to load: memfd_create: %m", path);
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errorf(-errno, "%s: cannot read: %m", path);
		if (n == 0)
			break;
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(mfd, buf + done, (size_t) (n - done));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return errorf(-errno, "%s: cannot make a private copy to load: %m", path);
			done += w;
		}
		size += n;
	}
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		return errorf(-errno, "%s: cannot seal its private copy: %m", path);
	*ret_size = size;
	return TAKE_FD(mfd);
}

/* Whether [off, off + len) lies within a file of `size` bytes. */
static bool within(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/* A shared object of this machine's class whose program headers, segments
 * and section headers all lie within the file: what the dynamic loader maps
 * without looking at the file's size. */
static int check_elf(int fd, const char *path, off_t size)
{
	ElfW(Ehdr) eh;
	ElfW(Phdr) ph;

	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t) sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
		return errorf(-ENOEXEC, "%s: not a shared object (no ELF header)", path);
	if (eh.e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32))
		return errorf(-ENOEXEC, "%s: an ELF file of another word size than dagd's", path);
	if (eh.e_type != ET_DYN)
		return errorf(-ENOEXEC, "%s: an ELF file, but not a shared object", path);
	if (eh.e_phentsize != sizeof(ph) ||
	    !within(eh.e_phoff, (uint64_t) eh.e_phnum * sizeof(ph), (uint64_t) size) ||
	    (eh.e_shoff && !within(eh.e_shoff, (uint64_t) eh.e_shnum * eh.e_shentsize, (uint64_t) size)))
		return errorf(-ENOEXEC, "%s: truncated (%lld bytes; its headers reach further)", path,
			      (long long) size);
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		if (pread(fd, &ph, sizeof(ph), (off_t) (eh.e_phoff + i * sizeof(ph))) != (ssize_t) sizeof(ph))
			return errorf(-EIO, "%s: cannot read its private copy: %m", path);
		if (ph.p_type == PT_LOAD && !within(ph.p_offset, ph.p_filesz, (uint64_t) size))
			return errorf(-ENOEXEC, "%s: truncated (%lld bytes; a segment reaches byte %llu)", path,
				      (long long) size, (unsigned long long) (ph.p_offset + ph.p_filesz));
	}
	return 0;
}

int plugin_copy(const char *path, int *ret_fd)
{
	_cleanup_close_ int fd = -EBADF, mfd = -EBADF;
	struct stat st;
	off_t size;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errorf(-errno, "%s: cannot open: %m", path);
	if (fstat(fd, &st) < 0)
		return errorf(-errno, "%s: cannot stat: %m", path);
	if (!S_ISREG(st.st_mode))
		return errorf(-ENOEXEC, "%s: not a regular file", path);
	mfd = copy_to_memfd(fd, path, &size);
	if (mfd < 0)
		return mfd;
	r = check_elf(mfd, path, size);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(mfd);
	return 0;
}

void plugin_copy_name(int fd, char *buf, size_t size)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}

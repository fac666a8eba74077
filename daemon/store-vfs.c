/*
 * store-vfs.c - the database's files as the default VFS has them, but for
 * one thing: what SQLite writes to the WAL is gathered in memory and written
 * in one call just before the commit's sync.  A commit writes each of its
 * frames in two calls (a header, then the page): twenty calls for a batch of
 * a few reports, where one does.
 *
 * Nothing is promised before the sync, so nothing changes for a crash: the
 * gathered writes are written (pwrite, then the sync) before xSync returns,
 * as before.  They are written too before anything else looks at the file
 * (a read, its size, a truncation, a lock change, its close), so that SQLite
 * never sees the file other than as it wrote it.  Writes that follow one
 * another in the file are gathered; one that does not (a frame rewritten)
 * writes those gathered first, then starts a gathering of its own.  Other
 * files (the database itself) are written as they come.
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "dagd.h"
#include "store-private.h"

/* written past this: the default VFS writes less than 128 KiB in a call
 * (a longer write would be cut short, and taken for a full disk) */
#define GATHER_MAX (120 * 1024)

struct gfile {
	sqlite3_file base;
	sqlite3_file *real;             /* the default VFS's file, after this struct */
	bool wal;
	char *buf;
	size_t len, cap;
	sqlite3_int64 off;              /* where buf goes in the file */
};

static sqlite3_vfs vfs, *parent;

static int flush(struct gfile *f)
{
	int rc;

	if (f->len == 0)
		return SQLITE_OK;
	rc = f->real->pMethods->xWrite(f->real, f->buf, (int) f->len, f->off);
	f->len = 0;
	return rc;
}

static int g_close(sqlite3_file *file)
{
	struct gfile *f = (struct gfile *) file;
	int rc = flush(f), rc2 = f->real->pMethods->xClose(f->real);

	free(f->buf);
	f->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

/* The default VFS's file, and its method called: at once, or once the
 * gathered writes are written (nothing looks at the file before them). */
#define REAL(file) (((struct gfile *) (file))->real)
#define FORWARD(file, method, ...) REAL(file)->pMethods->method(REAL(file), ## __VA_ARGS__)
#define AFTER_FLUSH(file, method, ...) (flush((struct gfile *) (file)) ?: FORWARD(file, method, ## __VA_ARGS__))

static int g_read(sqlite3_file *file, void *p, int n, sqlite3_int64 off)
{
	return AFTER_FLUSH(file, xRead, p, n, off);
}

static int g_write(sqlite3_file *file, const void *p, int n, sqlite3_int64 off)
{
	struct gfile *f = (struct gfile *) file;
	int rc;

	if (!f->wal)
		return f->real->pMethods->xWrite(f->real, p, n, off);
	if (f->len > 0 && off != f->off + (sqlite3_int64) f->len) {
		rc = flush(f);
		if (rc != SQLITE_OK)
			return rc;
	}
	if (f->len + (size_t) n > GATHER_MAX) {
		rc = flush(f);
		if (rc != SQLITE_OK)
			return rc;
		if ((size_t) n > GATHER_MAX)
			return f->real->pMethods->xWrite(f->real, p, n, off);
	}
	if (f->len + (size_t) n > f->cap) {
		f->cap = GATHER_MAX;
		f->buf = xrealloc(f->buf, f->cap);
	}
	if (f->len == 0)
		f->off = off;
	memcpy(f->buf + f->len, p, (size_t) n);
	f->len += (size_t) n;
	return SQLITE_OK;
}

static int g_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	return AFTER_FLUSH(file, xTruncate, size);
}

static int g_sync(sqlite3_file *file, int flags)
{
	return AFTER_FLUSH(file, xSync, flags);
}

static int g_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	return AFTER_FLUSH(file, xFileSize, size);
}

static int g_lock(sqlite3_file *file, int level)
{
	return AFTER_FLUSH(file, xLock, level);
}

static int g_unlock(sqlite3_file *file, int level)
{
	return AFTER_FLUSH(file, xUnlock, level);
}

static int g_check_reserved(sqlite3_file *file, int *out)
{
	return FORWARD(file, xCheckReservedLock, out);
}

static int g_file_control(sqlite3_file *file, int op, void *arg)
{
	return AFTER_FLUSH(file, xFileControl, op, arg);
}

static int g_sector_size(sqlite3_file *file)
{
	return FORWARD(file, xSectorSize);
}

static int g_device(sqlite3_file *file)
{
	return FORWARD(file, xDeviceCharacteristics);
}

static int g_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **p)
{
	return FORWARD(file, xShmMap, page, size, extend, p);
}

static int g_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
	return FORWARD(file, xShmLock, offset, n, flags);
}

static void g_shm_barrier(sqlite3_file *file)
{
	FORWARD(file, xShmBarrier);
}

static int g_shm_unmap(sqlite3_file *file, int delete)
{
	return FORWARD(file, xShmUnmap, delete);
}

static int g_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **p)
{
	return AFTER_FLUSH(file, xFetch, off, n, p);
}

static int g_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
	return FORWARD(file, xUnfetch, off, p);
}

static const sqlite3_io_methods methods = {
	.iVersion = 3,
	.xClose = g_close,
	.xRead = g_read,
	.xWrite = g_write,
	.xTruncate = g_truncate,
	.xSync = g_sync,
	.xFileSize = g_file_size,
	.xLock = g_lock,
	.xUnlock = g_unlock,
	.xCheckReservedLock = g_check_reserved,
	.xFileControl = g_file_control,
	.xSectorSize = g_sector_size,
	.xDeviceCharacteristics = g_device,
	.xShmMap = g_shm_map,
	.xShmLock = g_shm_lock,
	.xShmBarrier = g_shm_barrier,
	.xShmUnmap = g_shm_unmap,
	.xFetch = g_fetch,
	.xUnfetch = g_unfetch,
};

static int g_open(sqlite3_vfs *v, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
	struct gfile *f = (struct gfile *) file;
	int rc;

	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *) (f + 1);
	rc = parent->xOpen(parent, name, f->real, flags, out_flags);
	if (rc != SQLITE_OK || !f->real->pMethods) {
		/* as the default VFS left it: SQLite calls no method of it */
		file->pMethods = NULL;
		return rc;
	}
	/* the methods of version 3 forwarded: the default VFS has them all */
	if (f->real->pMethods->iVersion < 3) {
		f->real->pMethods->xClose(f->real);
		file->pMethods = NULL;
		return SQLITE_CANTOPEN;
	}
	f->wal = (flags & SQLITE_OPEN_WAL) != 0;
	file->pMethods = &methods;
	return SQLITE_OK;
}

/* The VFS "dagd", once, before the database is opened. */
const char *store_vfs(void)
{
	if (!parent) {
		parent = sqlite3_vfs_find(NULL);
		if (!parent)
			return NULL;
		vfs = *parent;
		vfs.zName = "dagd";
		vfs.szOsFile = (int) sizeof(struct gfile) + parent->szOsFile;
		vfs.xOpen = g_open;
		vfs.pNext = NULL;
		if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK) {
			parent = NULL;
			return NULL;
		}
	}
	return vfs.zName;
}

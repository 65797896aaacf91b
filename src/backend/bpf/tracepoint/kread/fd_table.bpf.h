/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpf-tracepoint, kernel-read mode: the fd table. An fd names its struct file through
 * the task's files_struct; an fd opened for writing on a file under a root is tracked
 * (through dup, to its close, exit or exec) so that one modify, named by the file and
 * carrying its first writer, is sent when it closes.
 */
#ifndef FSTRAIL_KREAD_FD_TABLE_BPF_H
#define FSTRAIL_KREAD_FD_TABLE_BPF_H

#include "backend/bpf/tracepoint/kread/calls.bpf.h"
#include "backend/bpf/tracepoint/kread/record.bpf.h"

/* Files open for writing flushed at exit or exec (more are counted lost). */
#define FST_KR_FLUSH_MAX 8

/* An fd open for writing on a file under a root: modify at its close. */
struct fst_kr_write {
	__u64 file;
	__u32 written;
	__u32 _pad;
	struct fst_actor writer; /* the first writer */
};

struct fst_kr_flush {
	__u32 tgid;
	__u32 count;
	__u32 overflow;
	__s32 fds[FST_KR_FLUSH_MAX];
	struct fst_kr_write writes[FST_KR_FLUSH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fst_kr_flush);
} fst_kr_flush_scratch SEC(".maps");

static __always_inline struct task_struct *fst_kr_task(void)
{
	return (struct task_struct *)bpf_get_current_task();
}

static __always_inline struct file *fst_kr_file_of(__s32 fd)
{
	struct fdtable *fdt = BPF_CORE_READ(fst_kr_task(), files, fdt);
	struct file **fds;
	struct file *file = 0;

	if (fd < 0 || !fdt || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&file, sizeof(file), fds + fd);
	return file;
}

static __always_inline struct mount *fst_kr_file_mount(struct file *file)
{
	return fst_real_mount(BPF_CORE_READ(file, f_path.mnt));
}

static __always_inline int fst_kr_file_under_root(struct file *file)
{
	return fst_dentry_under_root(BPF_CORE_READ(file, f_path.dentry), fst_kr_file_mount(file));
}

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct fst_tp_fd_key);
	__type(value, struct fst_kr_write);
} fst_kr_write_fds SEC(".maps");

/* Processes with entries in fst_kr_write_fds: only they are flushed at exit and exec. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} fst_kr_writers SEC(".maps");

/* An fd just opened for writing on a file under a root: its modify comes at its close. */
static __always_inline void fst_kr_track_write(__u32 tgid, __s32 fd, struct file *file)
{
	struct fst_tp_fd_key key = {.tgid = tgid, .fd = fd};
	struct fst_kr_write w = {.file = (__u64)file};
	__u32 one = 1, *count;

	if (bpf_map_update_elem(&fst_kr_write_fds, &key, &w, BPF_ANY)) {
		fst_count_lost(FST_OP_MODIFY);
		return;
	}
	count = bpf_map_lookup_elem(&fst_kr_writers, &tgid);
	if (count)
		__sync_fetch_and_add(count, 1);
	else if (bpf_map_update_elem(&fst_kr_writers, &tgid, &one, BPF_ANY))
		fst_count_lost(FST_OP_MODIFY);
}

static __always_inline int fst_sys_write(__s32 fd)
{
	struct fst_tp_fd_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd};
	struct fst_kr_write *w = bpf_map_lookup_elem(&fst_kr_write_fds, &key);

	if (!w || w->written)
		return 0;
	fst_fill_task_actor(&w->writer);
	w->written = 1;
	return 0;
}

/* The modify of a written fd, named by its file now (it is still open: verified). */
static __always_inline void fst_kr_send_modify(__s32 fd, struct fst_kr_write *w)
{
	struct file *file = fst_kr_file_of(fd);
	struct fst_kr_record *r;

	if (!file || (__u64)file != w->file) {
		fst_count_lost(FST_OP_MODIFY); /* closed without a close call (exec's O_CLOEXEC) */
		return;
	}
	r = fst_kr_begin(FST_OP_MODIFY);
	if (!r)
		return;
	fst_kr_file_path(r, file);
	r->ev.actor = w->writer;
	fst_kr_submit(r, 0);
}

static __always_inline void fst_kr_forget_writer_fd(__u32 tgid)
{
	__u32 *count = bpf_map_lookup_elem(&fst_kr_writers, &tgid);

	if (count && *count > 1)
		__sync_fetch_and_add(count, -1);
	else if (count)
		bpf_map_delete_elem(&fst_kr_writers, &tgid);
}

/* The fd is closing (it still names its file): its modify, if it was written. */
static __always_inline void fst_kr_close_fd(__u32 tgid, __s32 fd)
{
	struct fst_tp_fd_key key = {.tgid = tgid, .fd = fd};
	struct fst_kr_write *found = bpf_map_lookup_elem(&fst_kr_write_fds, &key);
	struct fst_kr_write w;

	if (!found)
		return;
	w = *found;
	bpf_map_delete_elem(&fst_kr_write_fds, &key);
	fst_kr_forget_writer_fd(tgid);
	if (w.written)
		fst_kr_send_modify(fd, &w);
}

static __always_inline int fst_sys_close(__s32 fd)
{
	fst_kr_close_fd(bpf_get_current_pid_tgid() >> 32, fd);
	return 0;
}

/* dup, dup2, dup3, fcntl(F_DUPFD*): the new fd of a tracked file is tracked too. */
static __always_inline int fst_sys_dup(__s32 old_fd, __s32 new_fd)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct fst_tp_fd_key old_key = {.tgid = tgid, .fd = old_fd};
	struct fst_kr_call call = {.op = FST_OP_MODIFY, .kind = FST_KR_DUP, .dirfd = old_fd};

	if (new_fd >= 0 && new_fd != old_fd)
		fst_kr_close_fd(tgid, new_fd); /* dup2 closes what new_fd named */
	if (!bpf_map_lookup_elem(&fst_kr_write_fds, &old_key))
		return 0;
	return fst_kr_keep(&call);
}

static __always_inline int fst_kr_exit_dup(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid(), tgid = bpf_get_current_pid_tgid() >> 32;
	struct fst_kr_call *call = bpf_map_lookup_elem(&fst_kr_calls, &tid);
	struct fst_tp_fd_key old_key = {.tgid = tgid}, new_key = {.tgid = tgid, .fd = ret};
	struct fst_kr_write *w;
	__u32 *count;

	if (!call)
		return 0;
	old_key.fd = call->dirfd;
	bpf_map_delete_elem(&fst_kr_calls, &tid);
	if (ret < 0 || ret == old_key.fd)
		return 0;
	w = bpf_map_lookup_elem(&fst_kr_write_fds, &old_key);
	if (!w)
		return 0;
	if (bpf_map_update_elem(&fst_kr_write_fds, &new_key, w, BPF_ANY)) {
		fst_count_lost(FST_OP_MODIFY);
		return 0;
	}
	count = bpf_map_lookup_elem(&fst_kr_writers, &tgid);
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

/* bpf_for_each_map_elem's context must be on the stack: it points to the map value. */
struct fst_kr_flush_ctx {
	struct fst_kr_flush *flush;
};

static long fst_kr_collect(struct bpf_map *map, struct fst_tp_fd_key *key, struct fst_kr_write *w,
			   struct fst_kr_flush_ctx *ctx)
{
	struct fst_kr_flush *flush = ctx->flush;
	__u32 n = flush->count;

	if (key->tgid != flush->tgid)
		return 0;
	if (w->written) {
		if (n < FST_KR_FLUSH_MAX) {
			flush->fds[n] = key->fd;
			flush->writes[n] = *w;
			flush->count = n + 1;
		} else {
			flush->overflow++;
		}
	}
	bpf_map_delete_elem(map, key);
	return 0;
}

/* Exit and exec close fds without a close call: their modifies go now. */
static __always_inline void fst_kr_flush_writes(__u32 tgid)
{
	__u32 zero = 0;
	struct fst_kr_flush *flush;
	struct fst_kr_flush_ctx ctx;

	if (!bpf_map_lookup_elem(&fst_kr_writers, &tgid))
		return;
	bpf_map_delete_elem(&fst_kr_writers, &tgid);
	flush = bpf_map_lookup_elem(&fst_kr_flush_scratch, &zero);
	if (!flush)
		return;
	flush->tgid = tgid;
	flush->count = 0;
	flush->overflow = 0;
	ctx.flush = flush;
	bpf_for_each_map_elem(&fst_kr_write_fds, fst_kr_collect, &ctx, 0);
	for (__u32 i = 0; i < FST_KR_FLUSH_MAX; i++) {
		if (i >= flush->count)
			break;
		fst_kr_send_modify(flush->fds[i], &flush->writes[i]);
	}
	for (__u32 i = 0; i < FST_KR_FLUSH_MAX && i < flush->overflow; i++)
		fst_count_lost(FST_OP_MODIFY);
}

#endif

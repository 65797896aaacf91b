/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpf-tracepoint, kernel-read mode: the event record and its actor. The actor is read
 * from the current task (credentials, login uid, parent: fs_capture.bpf.h), and the
 * executable file itself is announced before a process's first event.
 */
#ifndef FSTRAIL_KREAD_RECORD_BPF_H
#define FSTRAIL_KREAD_RECORD_BPF_H

#include "backend/bpf/common/fs_capture.bpf.h"

/* One path: the argument (< FST_PATH_MAX), then the start directory's names. */
#define FST_KR_REGION (2 * FST_PATH_MAX + FST_NAME_MASK + 1)
#define FST_KR_DATA (2 * FST_KR_REGION)

struct fst_kr_record {
	struct fst_event ev;
	char data[FST_KR_DATA];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fst_kr_record);
} fst_kr_scratch SEC(".maps");

static __always_inline struct fst_kr_record *fst_kr_begin(__u16 op)
{
	__u32 zero = 0;
	struct fst_kr_record *r = bpf_map_lookup_elem(&fst_kr_scratch, &zero);

	if (r)
		fst_event_begin(&r->ev, op);
	return r;
}

/* The path of an open file, at data[0]. */
static __always_inline void fst_kr_file_path(struct fst_kr_record *r, struct file *file)
{
	fst_event_walk_path(&r->ev, r->data, BPF_CORE_READ(file, f_path.dentry), fst_real_mount(BPF_CORE_READ(file, f_path.mnt)));
	fst_event_set_inode(&r->ev, BPF_CORE_READ(file, f_inode));
}

static __always_inline void fst_kr_submit(struct fst_kr_record *r, long ret)
{
	__u32 size = sizeof(struct fst_event) + r->ev.path_len + r->ev.old_path_len;

	if (size > sizeof(*r))
		size = sizeof(*r);
	fst_event_seal(&r->ev, ret < 0 ? (__s32)ret : 0, size);
	fst_output_adaptive_or_count(r, size, r->ev.op);
}

#endif

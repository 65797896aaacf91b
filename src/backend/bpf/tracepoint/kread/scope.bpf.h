/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpf-tracepoint, kernel-read mode: the root filter for path arguments. A start
 * directory under a root (the (dev, ino) walk of fs_capture.bpf.h) is inside; one above
 * the roots is filtered by prefix hashes of the argument (kread.bpf.h).
 */
#ifndef FSTRAIL_KREAD_SCOPE_BPF_H
#define FSTRAIL_KREAD_SCOPE_BPF_H

#include "backend/bpf/common/fs_capture.bpf.h"
#include "backend/bpf/tracepoint/kread.bpf.h"

/* Where a path argument lies. */
#define FST_KR_OUTSIDE 0
#define FST_KR_INSIDE 1
#define FST_KR_UNDECIDED 2 /* ".." in it: user space decides on the joined path */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, FST_KR_MAX_ANCESTORS);
	__type(key, struct fst_root_key);
	__type(value, __u8);
} fst_kr_ancestors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, FST_KR_MAX_PREFIXES);
	__type(key, __u64);
	__type(value, __u8);
} fst_kr_prefixes SEC(".maps");

struct fst_kr_scan {
	char *arg;
	__u32 len;
	__u32 comp_len;
	__u32 all_dots;
	__u32 components;
	__u32 hashing; /* the start directory is above a root: look prefixes up */
	__u32 scope;
	__u64 committed; /* hash up to the last whole component */
	__u64 work;      /* hash with the component being read */
};

static long fst_kr_scan_byte(__u32 i, struct fst_kr_scan *s)
{
	char c = i < s->len ? s->arg[i & FST_PATH_MASK] : '/';

	if (c == '/') {
		if (s->comp_len == 0)
			return i >= s->len;
		if (s->all_dots && s->comp_len == 2) {
			s->scope = FST_KR_UNDECIDED; /* "..": user space decides on the joined path */
			return 1;
		}
		if (s->all_dots && s->comp_len == 1) {
			s->work = s->committed; /* "." */
		} else {
			s->committed = s->work;
			s->components++;
			if (s->hashing && bpf_map_lookup_elem(&fst_kr_prefixes, &s->committed)) {
				s->scope = FST_KR_INSIDE;
				return 1;
			}
		}
		s->comp_len = 0;
		s->all_dots = 1;
		return i >= s->len;
	}
	if (s->comp_len == 0) {
		s->work = s->committed;
		if (s->components)
			s->work = fst_kr_hash_byte(s->work, '/');
	}
	s->work = fst_kr_hash_byte(s->work, (__u8)c);
	s->comp_len++;
	if (c != '.')
		s->all_dots = 0;
	return 0;
}

/* Where `arg` (len bytes, no NUL) relative to the directory (dir, mnt) lies. */
static __always_inline __u32 fst_kr_arg_scope(char *arg, __u32 len, struct dentry *dir, struct mount *mnt)
{
	struct fst_kr_scan s = {.arg = arg, .len = len, .all_dots = 1, .scope = FST_KR_OUTSIDE};
	struct inode *inode;

	if (fst_dentry_under_root(dir, mnt))
		return FST_KR_INSIDE;
	inode = BPF_CORE_READ(dir, d_inode);
	if (inode) {
		struct fst_root_key key = {
			.dev = fst_encode_dev(BPF_CORE_READ(inode, i_sb, s_dev)),
			.ino = BPF_CORE_READ(inode, i_ino),
		};
		if (bpf_map_lookup_elem(&fst_kr_ancestors, &key)) {
			s.hashing = 1;
			s.committed = fst_kr_dir_seed(key.dev, key.ino);
		}
	}
	bpf_loop(FST_PATH_MAX + 1, fst_kr_scan_byte, &s, 0);
	return s.scope;
}

#endif

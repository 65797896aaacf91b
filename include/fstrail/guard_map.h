/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The guard rule map shared by the bpf-lsm programs and user space (`fstrail guard`
 * with enforce = true): one entry per guarded tree, keyed by the tree root's
 * (st_dev, st_ino) like fst_roots. The innermost guarded ancestor of an object is
 * the first one the kernel's d_parent walk finds in this map.
 */
#ifndef FSTRAIL_GUARD_MAP_H
#define FSTRAIL_GUARD_MAP_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define FST_GUARD_MAX_EXEMPT 8
#define FST_GUARD_MAX_RULES 1024

struct fst_guard_rule {
	__u32 owner;
	__u32 group;
	__u32 file_mode; /* permission bits allowed on files */
	__u32 dir_mode;  /* ... on directories (mode_max plus x where r) */
	__u32 enforce;   /* 0: an inner tree that only alerts (no denial below it) */
	__u32 exempt_count;
	__u32 exempt[FST_GUARD_MAX_EXEMPT]; /* real uid or loginuid: never denied */
};

#endif /* FSTRAIL_GUARD_MAP_H */

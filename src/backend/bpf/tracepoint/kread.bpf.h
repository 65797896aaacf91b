/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * bpf-tracepoint, kernel-read mode: what kread.bpf.c shares with its loader.
 *
 * Watched roots are (st_dev, st_ino) keys in fst_roots (fs_capture.bpf.h). A path-based
 * syscall whose start directory lies above the roots is filtered by prefix hashes:
 * for every root R and every ancestor directory A of R, user space stores
 * fst_kr_prefix_hash(A.dev, A.ino, "the normalised relative path A -> R") in
 * fst_kr_prefixes and (A.dev, A.ino) in fst_kr_ancestors; the program hashes the
 * argument's normalised prefixes the same way and looks each one up. A hit is
 * re-checked exactly by user space on the joined path, so a collision never makes an
 * event, it only wakes user space.
 */
#ifndef FSTRAIL_KREAD_BPF_H
#define FSTRAIL_KREAD_BPF_H

#define FST_KR_FNV_OFFSET 0xcbf29ce484222325ULL
#define FST_KR_FNV_PRIME 0x100000001b3ULL

static inline __u64 fst_kr_hash_byte(__u64 h, __u8 byte)
{
	return (h ^ byte) * FST_KR_FNV_PRIME;
}

static inline __u64 fst_kr_hash_u64(__u64 h, __u64 v)
{
	for (int i = 0; i < 8; i++)
		h = fst_kr_hash_byte(h, (__u8)(v >> (8 * i)));
	return h;
}

/* The hash of a start directory: the seed its relative paths are hashed onto. */
static inline __u64 fst_kr_dir_seed(__u64 dev, __u64 ino)
{
	return fst_kr_hash_u64(fst_kr_hash_u64(FST_KR_FNV_OFFSET, dev), ino);
}

/* Components are hashed joined by one '/': "a/b" is hash(seed, 'a', '/', 'b'). */
#define FST_KR_MAX_ANCESTORS 65536
#define FST_KR_MAX_PREFIXES 262144

#endif

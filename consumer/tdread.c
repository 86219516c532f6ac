// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * trace.dat version 6 (trace-cmd.dat.v6(5)): a header, the ftrace and
 * event format files, kallsyms, printk formats, saved command lines, the
 * CPU count, optional "options" and the "flyrecord" table of per-CPU page
 * data. Every length and count is checked against what is left of the
 * buffer before it is used; formats go through format.c, pages through
 * page.c. Version 7 (trace-cmd.dat.v7(5), trace-cmd 3.x's default) holds
 * the same parts in sections found through chained options sections,
 * each optionally compressed; the page data is then a list of compressed
 * chunks per CPU. Compression "none" and "zstd" are read.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <traceevent/kbuffer.h>
#include <zstd.h>

#include "tdread.h"

#define TD_MAGIC "\x17\x08\x44tracing"
#define TD_OPT_DONE 0
#define TD_OPT_BUFFER 3
#define TD_OPT_TRACECLOCK 4
#define TD_OPT_EVENT_FORMATS 18
#define TD_OPT_CMDLINES 21
#define TD_SEC_OPTIONS 0
#define TD_SEC_EVENT_FORMATS 18
#define TD_SEC_CMDLINES 21
#define TD_MAX_SECTION (1u << 30)	/* uncompressed bytes of one section or chunk */

struct td_cpu {
	uint64_t offset;
	uint64_t size;
};

struct td_cmd {
	int pid;
	char comm[20];
};

struct dc_tdread {
	const uint8_t *buf;
	size_t len;
	int version;
	bool zstd;		/* v7: sections and chunks may be zstd-compressed */
	int long_size;
	uint32_t page_size;
	struct dc_layout layouts[DC_SRC_NR];
	size_t nlayouts;
	bool has[DC_SRC_NR];
	int aux_id[DC_AUX_NR];	/* 0: not in the file */
	struct dc_load_fields aux_f[DC_AUX_NR];	/* --loads events' fields */
	struct td_cpu *cpus;
	uint32_t ncpus;
	struct td_cmd *cmds;	/* sorted by pid */
	size_t ncmds;
	char clock[32];
};

static const char *const aux_names[DC_AUX_NR] = {
	[DC_AUX_KSWAPD_WAKE] = "mm_vmscan_kswapd_wake",
	[DC_AUX_KSWAPD_SLEEP] = "mm_vmscan_kswapd_sleep",
	[DC_AUX_DIRECT_BEGIN] = "mm_vmscan_direct_reclaim_begin",
	[DC_AUX_DIRECT_END] = "mm_vmscan_direct_reclaim_end",
	[DC_AUX_MEMCG_BEGIN] = "mm_vmscan_memcg_reclaim_begin",
	[DC_AUX_MEMCG_END] = "mm_vmscan_memcg_reclaim_end",
	[DC_AUX_NODE_BEGIN] = "mm_vmscan_node_reclaim_begin",
	[DC_AUX_NODE_END] = "mm_vmscan_node_reclaim_end",
	[DC_AUX_RA_SYNC] = "page_cache_sync_ra",
	[DC_AUX_RA_ASYNC] = "page_cache_async_ra",
	[DC_AUX_RA_ORDER] = "page_cache_ra_order",
	[DC_AUX_RA_UNBOUNDED] = "page_cache_ra_unbounded",
	[DC_AUX_READ] = "mm_filemap_get_pages",
	[DC_AUX_FAULT] = "mm_filemap_fault",
};

const char *dc_aux_name(int a)
{
	return a >= 0 && a < DC_AUX_NR ? aux_names[a] : NULL;
}

const char *dc_aux_system(int a)
{
	return a < DC_AUX_RA_SYNC ? "vmscan" : a < DC_AUX_READ ? "readahead" : "filemap";
}


/* A cursor over the buffer; every read checks what is left. */
struct cur {
	const uint8_t *p;
	size_t left;
	size_t pos;		/* offset from the start of the file */
};

static bool take(struct cur *c, size_t n, const uint8_t **out)
{
	if (n > c->left)
		return false;
	if (out)
		*out = c->p;
	c->p += n;
	c->left -= n;
	c->pos += n;
	return true;
}

static bool u32(struct cur *c, uint32_t *v)
{
	const uint8_t *p;

	if (!take(c, 4, &p))
		return false;
	memcpy(v, p, 4);
	*v = le32toh(*v);
	return true;
}

static bool u64(struct cur *c, uint64_t *v)
{
	const uint8_t *p;

	if (!take(c, 8, &p))
		return false;
	memcpy(v, p, 8);
	*v = le64toh(*v);
	return true;
}

static bool u16(struct cur *c, uint16_t *v)
{
	const uint8_t *p;

	if (!take(c, 2, &p))
		return false;
	memcpy(v, p, 2);
	*v = le16toh(*v);
	return true;
}

/* A NUL-terminated string of at most max bytes. */
static bool str(struct cur *c, size_t max, const char **s, size_t *n)
{
	size_t lim = c->left < max ? c->left : max;
	const uint8_t *z = memchr(c->p, 0, lim);

	if (!z)
		return false;
	*s = (const char *)c->p;
	*n = (size_t)(z - c->p);
	return take(c, *n + 1, NULL);
}

/* The value after "key" at the start of a line, e.g. "name: " or "ID: ". */
static bool line_value(const char *text, size_t len, const char *key, const char **v,
		       size_t *vn)
{
	size_t kn = strlen(key);

	for (size_t i = 0; i + kn <= len;) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - text) : len;

		if (end - i >= kn && !memcmp(text + i, key, kn)) {
			*v = text + i + kn;
			*vn = end - i - kn;
			return true;
		}
		i = end + 1;
	}
	return false;
}

static int format_one(struct dc_tdread *t, const char *sys, size_t sysn,
		      const char *text, size_t len, const char **why)
{
	char system[64], name[128];
	const char *v;
	size_t vn;
	int src, r;

	if (sysn >= sizeof(system) || !line_value(text, len, "name: ", &v, &vn) ||
	    vn >= sizeof(name))
		return 0;	/* not an event of ours: never looked at */
	memcpy(system, sys, sysn);
	system[sysn] = '\0';
	memcpy(name, v, vn);
	name[vn] = '\0';
	src = dc_src_lookup(system, name);
	if (src >= 0) {
		struct dc_layout l;

		if (t->has[src])
			return 0;
		r = dc_layout_parse((enum dc_src)src, text, len, &l);
		if (r == -ENOMEM)
			return r;
		if (r) {
			*why = "an embedded page-cache event format cannot be decoded";
			return -EPROTO;
		}
		/* A second event with the same id would make decoding ambiguous. */
		for (size_t i = 0; i < t->nlayouts; i++)
			if (t->layouts[i].id == l.id) {
				*why = "two embedded event formats have the same id";
				return -EBADMSG;
			}
		t->layouts[t->nlayouts++] = l;
		t->has[src] = true;
		return 0;
	}
	for (int a = 0; a < DC_AUX_NR; a++) {
		char idbuf[16];
		long id;
		char *e;

		if (strcmp(name, aux_names[a]) || strcmp(system, dc_aux_system(a)))
			continue;
		if (a >= DC_AUX_FIRST_LOAD && dc_load_fields_parse(&t->aux_f[a], a, text, len))
			return 0;
		/* Only common_pid is read: its place must be the usual one. */
		if (!memmem(text, len, "common_pid;\toffset:4;\tsize:4;", 29) ||
		    !line_value(text, len, "ID: ", &v, &vn) || !vn || vn >= sizeof(idbuf))
			return 0;
		memcpy(idbuf, v, vn);
		idbuf[vn] = '\0';
		id = strtol(idbuf, &e, 10);
		if (*e || id <= 0 || id > 0xffff)
			return 0;
		t->aux_id[a] = (int)id;
	}
	return 0;
}

static int cmp_cmd(const void *a, const void *b)
{
	const struct td_cmd *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

static int parse_cmdlines(struct dc_tdread *t, const char *text, size_t len)
{
	size_t lines = 0, i = 0;

	for (size_t k = 0; k < len; k++)
		lines += text[k] == '\n';
	t->cmds = calloc(lines + 1, sizeof(*t->cmds));
	if (!t->cmds)
		return -ENOMEM;
	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - text) : len, j = i;
		long pid = 0;
		struct td_cmd *c;

		while (j < end && text[j] >= '0' && text[j] <= '9' && pid < 0x7fffffff)
			pid = pid * 10 + (text[j++] - '0');
		if (j > i && j < end && text[j] == ' ' && t->ncmds <= lines) {
			size_t n = end - j - 1;

			c = &t->cmds[t->ncmds++];
			c->pid = (int)pid;
			if (n >= sizeof(c->comm))
				n = sizeof(c->comm) - 1;
			memcpy(c->comm, text + j + 1, n);
			c->comm[n] = '\0';
		}
		i = end + 1;
	}
	qsort(t->cmds, t->ncmds, sizeof(*t->cmds), cmp_cmd);
	return 0;
}

static void parse_clock(struct dc_tdread *t, const char *text, size_t len)
{
	const char *a = memchr(text, '[', len), *b;
	size_t n;

	if (!a)
		return;
	b = memchr(a, ']', len - (size_t)(a - text));
	if (!b)
		return;
	n = (size_t)(b - a - 1);
	if (n >= sizeof(t->clock))
		n = sizeof(t->clock) - 1;
	memcpy(t->clock, a + 1, n);
	t->clock[n] = '\0';
}

/* Event systems: count; per system a name, a count, size + format each. */
static int parse_systems(struct dc_tdread *t, struct cur *c, const char **why)
{
	const uint8_t *p;
	uint32_t nsys, n32;
	uint64_t n64;
	int r;

	if (!u32(c, &nsys))
		return -EBADMSG;
	for (uint32_t i = 0; i < nsys; i++) {
		const char *sys;
		size_t sysn;

		if (!str(c, 256, &sys, &sysn) || !u32(c, &n32))
			return -EBADMSG;
		for (uint32_t k = 0; k < n32; k++) {
			if (!u64(c, &n64) || !take(c, n64, &p))
				return -EBADMSG;
			r = format_one(t, sys, sysn, (const char *)p, n64, why);
			if (r)
				return r;
		}
	}
	return 0;
}

static int cpu_table(struct dc_tdread *t, const char **why)
{
	t->cpus = calloc(t->ncpus ? t->ncpus : 1, sizeof(*t->cpus));
	if (!t->cpus)
		return -ENOMEM;
	(void)why;
	return 0;
}

static int check_cpu(struct dc_tdread *t, const struct td_cpu *cp, const char **why)
{
	/* trace-cmd writes an empty CPU's offset past the end, size 0. */
	if (cp->size && (cp->offset > t->len || cp->size > t->len - cp->offset)) {
		*why = "a CPU's page data lies beyond the end of the file (truncated?)";
		return -EBADMSG;
	}
	return 0;
}

static int parse_v6(struct dc_tdread *t, struct cur *c, const char **why)
{
	const uint8_t *p;
	const char *s;
	uint64_t n64;
	uint32_t n32;
	size_t sn;
	int r;

	/* header_page and header_event: label, 8-byte size, text. */
	for (int i = 0; i < 2; i++) {
		if (!str(c, 16, &s, &sn) || strcmp(s, i ? "header_event" : "header_page") ||
		    !u64(c, &n64) || !take(c, n64, NULL))
			goto trunc;
	}
	/* ftrace's own events: count, then size + format each. */
	if (!u32(c, &n32))
		goto trunc;
	for (uint32_t i = 0; i < n32; i++)
		if (!u64(c, &n64) || !take(c, n64, NULL))
			goto trunc;
	r = parse_systems(t, c, why);
	if (r == -EBADMSG)
		goto trunc;
	if (r)
		return r;
	/* kallsyms (4-byte size), printk formats (4-byte size). */
	for (int i = 0; i < 2; i++)
		if (!u32(c, &n32) || !take(c, n32, NULL))
			goto trunc;
	/* Saved command lines (8-byte size). */
	if (!u64(c, &n64) || !take(c, n64, &p))
		goto trunc;
	r = parse_cmdlines(t, (const char *)p, n64);
	if (r)
		return r;
	if (!u32(c, &t->ncpus))
		goto trunc;
	if (t->ncpus > 4096) {
		*why = "the CPU count in the header is implausible";
		return -EBADMSG;
	}
	for (;;) {
		const uint8_t *label;

		if (!take(c, 10, &label))
			goto trunc;
		if (!memcmp(label, "options  ", 10)) {
			for (;;) {
				uint16_t id;

				if (!u16(c, &id))
					goto trunc;
				if (!id)
					break;
				if (!u32(c, &n32) || !take(c, n32, &p))
					goto trunc;
				if (id == TD_OPT_TRACECLOCK)
					parse_clock(t, (const char *)p, n32);
			}
			continue;
		}
		if (!memcmp(label, "latency  ", 10)) {
			*why = "this trace.dat holds latency-tracer text, not event pages";
			return -EOPNOTSUPP;
		}
		if (!memcmp(label, "flyrecord", 10))
			break;
		*why = "unknown section after the CPU count (not flyrecord)";
		return -EBADMSG;
	}
	r = cpu_table(t, why);
	if (r)
		return r;
	for (uint32_t i = 0; i < t->ncpus; i++) {
		struct td_cpu *cp = &t->cpus[i];

		if (!u64(c, &cp->offset) || !u64(c, &cp->size))
			goto trunc;
		r = check_cpu(t, cp, why);
		if (r)
			return r;
	}
	return 0;
trunc:
	*why = "the file ends inside its header sections (truncated or corrupt)";
	return -EBADMSG;
}

/*
 * The frame header states its content size (trace-cmd's writer sets it):
 * a mismatch is refused before a buffer of the claimed size is allocated.
 */
static bool zstd_size_ok(const void *src, size_t csize, uint32_t usize)
{
	unsigned long long n = ZSTD_getFrameContentSize(src, csize);

	if (n == ZSTD_CONTENTSIZE_ERROR)
		return false;
	return n == ZSTD_CONTENTSIZE_UNKNOWN || n == usize;
}

/*
 * v7: the section at off, which must have id want. Compressed sections
 * are decompressed into *freeme (the caller frees it).
 */
static int section(struct dc_tdread *t, uint64_t off, uint16_t want, struct cur *out,
		   uint8_t **freeme, const char **why)
{
	struct cur c;
	uint16_t id, flags;
	uint32_t strid, csize, usize;
	uint64_t size;
	const uint8_t *p;
	size_t got;

	*freeme = NULL;
	if (off > t->len)
		goto trunc;
	c = (struct cur){ t->buf + off, t->len - off, off };
	if (!u16(&c, &id) || !u16(&c, &flags) || !u32(&c, &strid) || !u64(&c, &size))
		goto trunc;
	if (id != want) {
		*why = "a section is not of the kind its option announces (corrupt)";
		return -EBADMSG;
	}
	if (!(flags & 1)) {
		if (!take(&c, size, &p))
			goto trunc;
		*out = (struct cur){ p, size, 0 };
		return 0;
	}
	if (!t->zstd) {
		*why = "a section is compressed but the file names no compression";
		return -EBADMSG;
	}
	if (size < 8 || !u32(&c, &csize) || !u32(&c, &usize) || csize > size - 8 ||
	    !take(&c, csize, &p))
		goto trunc;
	if (usize > TD_MAX_SECTION) {
		*why = "a compressed section claims an implausible size";
		return -EBADMSG;
	}
	if (!zstd_size_ok(p, csize, usize)) {
		*why = "a compressed section does not decompress (corrupt)";
		return -EBADMSG;
	}
	*freeme = malloc(usize ? usize : 1);
	if (!*freeme)
		return -ENOMEM;
	got = ZSTD_decompress(*freeme, usize, p, csize);
	if (ZSTD_isError(got) || got != usize) {
		free(*freeme);
		*freeme = NULL;
		*why = "a compressed section does not decompress (corrupt)";
		return -EBADMSG;
	}
	*out = (struct cur){ *freeme, usize, 0 };
	return 0;
trunc:
	*why = "a section lies beyond the end of the file (truncated or corrupt)";
	return -EBADMSG;
}

/* v7 BUFFER option: the top instance's flyrecord CPUs (others are ignored). */
static int parse_buffer(struct dc_tdread *t, struct cur *c, const char **why)
{
	const char *name, *clock;
	size_t nn, cn;
	uint64_t off;
	uint32_t psize, ncpus;
	int r;

	if (!u64(c, &off) || !str(c, 256, &name, &nn) || !str(c, 64, &clock, &cn) ||
	    !u32(c, &psize) || !u32(c, &ncpus))
		goto bad;
	if (nn)
		return 0;	/* an instance's buffer (trace-cmd -B): not ours */
	if (t->cpus) {
		*why = "two top-level buffers in one file";
		return -EBADMSG;
	}
	if (ncpus > 4096 || psize < 64 || psize > (1u << 24)) {
		*why = "implausible CPU count or page size in the buffer option";
		return -EBADMSG;
	}
	if (cn && cn < sizeof(t->clock))
		memcpy(t->clock, clock, cn + 1);
	t->page_size = psize;
	/* The CPUs listed may be fewer than the machine's; index by CPU id. */
	{
		uint32_t maxid = 0;
		struct cur c2 = *c;

		for (uint32_t i = 0; i < ncpus; i++) {
			uint32_t id;
			uint64_t o, s;

			if (!u32(&c2, &id) || !u64(&c2, &o) || !u64(&c2, &s))
				goto bad;
			if (id >= 4096) {
				*why = "implausible CPU id in the buffer option";
				return -EBADMSG;
			}
			if (id + 1 > maxid)
				maxid = id + 1;
		}
		t->ncpus = maxid;
	}
	r = cpu_table(t, why);
	if (r)
		return r;
	for (uint32_t i = 0; i < ncpus; i++) {
		uint32_t id = 0;
		struct td_cpu *cp;

		u32(c, &id);
		cp = &t->cpus[id];
		u64(c, &cp->offset);
		u64(c, &cp->size);
		r = check_cpu(t, cp, why);
		if (r)
			return r;
	}
	return 0;
bad:
	*why = "a buffer option is cut short (corrupt)";
	return -EBADMSG;
}

/*
 * v7 sections follow one another from the header to the end of the file
 * (libtracecmd finds the strings sections by walking them so). A section
 * that runs past the end means the file was cut, even where the part cut
 * is one this reader does not need (the strings). The walk stops, without
 * a verdict, at bytes that are not a section header of a known kind.
 */
static bool known_section(uint16_t id)
{
	return id == TD_SEC_OPTIONS || id == TD_OPT_BUFFER || (id >= 15 && id <= 22);
}

static int check_sections(const struct dc_tdread *t, size_t pos, const char **why)
{
	for (int n = 0; pos < t->len && n < 4096; n++) {
		struct cur c = { t->buf + pos, t->len - pos, pos };
		uint16_t id = 0, flags;
		uint32_t strid;
		uint64_t size;

		if (!u16(&c, &id))
			goto trunc;	/* one byte of a section header */
		if (!known_section(id))
			return 0;
		if (!u16(&c, &flags) || !u32(&c, &strid) || !u64(&c, &size))
			goto trunc;
		if (flags > 1)
			return 0;
		if (size > c.left)
			goto trunc;
		pos = c.pos + (size_t)size;
	}
	return 0;
trunc:
	*why = "the file ends inside a section (truncated)";
	return -EBADMSG;
}

static int parse_v7(struct dc_tdread *t, struct cur *c, const char **why)
{
	const char *name, *ver;
	size_t nn, vn;
	uint64_t next, fmt_off = 0, cmd_off = 0;
	size_t first;
	int r, sections = 0;

	if (!str(c, 64, &name, &nn) || !str(c, 64, &ver, &vn) || !u64(c, &next))
		goto trunc;
	first = c->pos;
	if (!strcmp(name, "zstd")) {
		t->zstd = true;
	} else if (strcmp(name, "none")) {
		*why = "the trace.dat is compressed with an algorithm this reader lacks "
		       "(zstd and none are read): trace-cmd convert --compression zstd";
		return -EOPNOTSUPP;
	}
	while (next) {
		struct cur oc;
		uint8_t *freeme;

		/* Options sections chain forward; a loop would never end. */
		if (++sections > 64) {
			*why = "too many options sections (a loop?)";
			return -EBADMSG;
		}
		r = section(t, next, TD_SEC_OPTIONS, &oc, &freeme, why);
		if (r)
			return r;
		next = 0;
		for (;;) {
			uint16_t id;
			uint32_t sz;
			const uint8_t *p;
			struct cur od;

			if (!u16(&oc, &id) || !u32(&oc, &sz) || !take(&oc, sz, &p)) {
				free(freeme);
				*why = "an options section is cut short (corrupt)";
				return -EBADMSG;
			}
			od = (struct cur){ p, sz, 0 };
			r = 0;
			if (id == TD_OPT_DONE) {
				if (!u64(&od, &next))
					next = 0;
				break;
			} else if (id == TD_OPT_EVENT_FORMATS) {
				if (!u64(&od, &fmt_off))
					r = -EBADMSG;
			} else if (id == TD_OPT_CMDLINES) {
				if (!u64(&od, &cmd_off))
					r = -EBADMSG;
			} else if (id == TD_OPT_TRACECLOCK) {
				if (!t->clock[0])
					parse_clock(t, (const char *)p, sz);
			} else if (id == TD_OPT_BUFFER) {
				r = parse_buffer(t, &od, why);
			}
			if (r) {
				free(freeme);
				if (!*why)
					*why = "an option is cut short (corrupt)";
				return r;
			}
		}
		free(freeme);
	}
	if (fmt_off) {
		struct cur sc;
		uint8_t *freeme;

		r = section(t, fmt_off, TD_SEC_EVENT_FORMATS, &sc, &freeme, why);
		if (!r) {
			r = parse_systems(t, &sc, why);
			if (r == -EBADMSG && !*why)
				*why = "the event formats section is cut short (corrupt)";
		}
		free(freeme);
		if (r)
			return r;
	}
	if (cmd_off) {
		struct cur sc;
		uint8_t *freeme;
		uint64_t n64;
		const uint8_t *p;

		r = section(t, cmd_off, TD_SEC_CMDLINES, &sc, &freeme, why);
		if (!r) {
			if (!u64(&sc, &n64) || !take(&sc, n64, &p)) {
				*why = "the command lines section is cut short (corrupt)";
				r = -EBADMSG;
			} else {
				r = parse_cmdlines(t, (const char *)p, n64);
			}
		}
		free(freeme);
		if (r)
			return r;
	}
	if (!t->cpus) {
		/* No flyrecord buffer: a valid file without events. */
		r = cpu_table(t, why);
		if (r)
			return r;
	}
	return check_sections(t, first, why);
trunc:
	*why = "the file ends inside its header (truncated)";
	return -EBADMSG;
}

/*
 * With the kernel-tracepoints series, the exact events replace the stock
 * ones (as in duet watch): decoding both would count a page twice.
 */
static void drop_superseded(struct dc_tdread *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nlayouts; i++) {
		enum dc_src s = t->layouts[i].src;

		if ((s == DC_SRC_WB_DIRTY && t->has[DC_SRC_P_DIRTY]) ||
		    (s == DC_SRC_SB_CLEAR_WB && t->has[DC_SRC_P_WB_START]))
			continue;
		t->layouts[n++] = t->layouts[i];
	}
	t->nlayouts = n;
}

int dc_tdread_open(const void *buf, size_t len, struct dc_tdread **ret,
		     const char **why)
{
	static const char *dummy;
	struct dc_tdread *t;
	struct cur c = { buf, len, 0 };
	const uint8_t *p;
	const char *s;
	size_t sn;
	int r;

	if (!why)
		why = &dummy;
	*why = NULL;
	if (!ret || (!buf && len))
		return -EINVAL;
	if (len >= 8 && !memcmp(buf, "PERFILE2", 8)) {
		*why = "this is a perf.data file: use perf script -s scripts/duet-perf-summary.py";
		return -EBADMSG;
	}
	if (!take(&c, 10, &p) || memcmp(p, TD_MAGIC, 10)) {
		*why = len ? "not a trace.dat file (bad magic)" : "empty file";
		return -EBADMSG;
	}
	if (!str(&c, 8, &s, &sn)) {
		*why = "not a trace.dat file (bad version string)";
		return -EBADMSG;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->buf = buf;
	t->len = len;
	t->version = atoi(s);
	if (t->version != 6 && t->version != 7) {
		*why = "unsupported trace.dat version (6 and 7 are read)";
		r = -EOPNOTSUPP;
		goto fail;
	}
	if (!take(&c, 6, &p)) {
		*why = "the file ends inside its header (truncated)";
		r = -EBADMSG;
		goto fail;
	}
	/* Pages are decoded in place: only this machine's byte order. */
	if (p[0] != (__BYTE_ORDER == __BIG_ENDIAN)) {
		*why = "the trace.dat was written on a machine of the other byte order";
		r = -EOPNOTSUPP;
		goto fail;
	}
	t->long_size = p[1];
	memcpy(&t->page_size, p + 2, 4);
	t->page_size = le32toh(t->page_size);
	if ((t->long_size != 4 && t->long_size != 8) || t->page_size < 64 ||
	    t->page_size > (1u << 24)) {
		*why = "implausible long size or page size in the header";
		r = -EBADMSG;
		goto fail;
	}
	r = t->version == 6 ? parse_v6(t, &c, why) : parse_v7(t, &c, why);
	if (r)
		goto fail;
	drop_superseded(t);
	*ret = t;
	return 0;
fail:
	if (r == -ENOMEM)
		*why = "out of memory";
	dc_tdread_free(t);
	return r;
}

void dc_tdread_free(struct dc_tdread *t)
{
	if (!t)
		return;
	free(t->cpus);
	free(t->cmds);
	free(t);
}

struct dctx {
	struct dc_tdread *t;
	struct dc_decoder *d;
	struct kbuffer *kb;	/* the second walk, for co-recorded events */
	bool any_aux;
};

/*
 * Co-recorded events (vmscan) of a page the decoder accepted: its entries
 * were checked against the page, so kbuffer walks them safely. They go to
 * their own per-CPU stream, merged by time with the page-cache records.
 */
static int aux_walk(struct dctx *c, const uint8_t *page, size_t len, uint16_t cpu,
		    struct dc_recbuf *aux)
{
	unsigned long long ts;
	const uint8_t *end = page + len;

	if (kbuffer_load_subbuffer(c->kb, (void *)page) < 0)
		return 0;
	for (uint8_t *data = kbuffer_read_event(c->kb, &ts); data;
	     data = kbuffer_next_event(c->kb, &ts)) {
		struct dc_record *rec;
		uint16_t id;
		int32_t pid;

		if (data < page || data + 8 > end || kbuffer_event_size(c->kb) < 8)
			continue;
		memcpy(&id, data, 2);
		for (int k = 0; k < DC_AUX_NR; k++) {
			const struct dc_load_fields *f = &c->t->aux_f[k];

			if (!c->t->aux_id[k] || c->t->aux_id[k] != id)
				continue;
			/* A --loads event too short for its fields is left out. */
			if (k >= DC_AUX_FIRST_LOAD &&
			    (kbuffer_event_size(c->kb) < f->end || data + f->end > end))
				break;
			if (dc_recbuf_reserve(aux, 1))
				return -ENOMEM;
			memcpy(&pid, data + 4, 4);
			rec = &aux->rec[aux->n++];
			memset(rec, 0, sizeof(*rec));
			rec->ts = ts;
			rec->pid = pid;
			rec->cpu = cpu;
			rec->type = DC_TDR_AUX;
			rec->index = (uint64_t)k;
			if (k >= DC_AUX_FIRST_LOAD)
				dc_load_decode(f, k, data, rec);
			break;
		}
	}
	return 0;
}

static int decode_pages(struct dctx *c, const uint8_t *p, uint64_t size, uint16_t cpu,
			struct dc_recbuf *out, struct dc_recbuf *aux)
{
	for (uint64_t off = 0; off < size; off += c->t->page_size) {
		uint64_t n = size - off;
		int r;

		if (n > c->t->page_size)
			n = c->t->page_size;
		r = dc_decode_page(c->d, p + off, n, cpu, out);
		if (r < 0 && r != -EBADMSG)
			return r;
		if (r >= 0 && c->any_aux) {
			r = aux_walk(c, p + off, n, cpu, aux);
			if (r)
				return r;
		}
	}
	return 0;
}

/*
 * v7 compressed page data: a chunk count, then per chunk its compressed
 * and uncompressed sizes and the zstd frame. A chunk that does not check
 * or decompress ends this CPU's data: its pages (or one, if the size is
 * not believable) are counted as corrupt, as are the chunks after it.
 */
static int decode_chunks(struct dctx *dc, const struct td_cpu *cp, uint16_t cpu,
			 struct dc_recbuf *out, struct dc_recbuf *aux, uint8_t **zbuf,
			 size_t *zcap, uint64_t *bad)
{
	struct dc_tdread *t = dc->t;
	/* The size trace-cmd 3.1 records leaves out the 4-byte chunk count. */
	size_t left = t->len - cp->offset < cp->size + 4 ? cp->size : cp->size + 4;
	struct cur c = { t->buf + cp->offset, left, cp->offset };
	uint32_t n, csize, usize;

	if (!u32(&c, &n)) {
		(*bad)++;
		return 0;
	}
	for (uint32_t k = 0; k < n; k++) {
		const uint8_t *p;
		size_t got;
		int r;

		if (!u32(&c, &csize) || !u32(&c, &usize) || !take(&c, csize, &p) ||
		    usize > TD_MAX_SECTION) {
			*bad += n - k;
			return 0;
		}
		if (!zstd_size_ok(p, csize, usize)) {
			*bad += usize / t->page_size ? usize / t->page_size : 1;
			continue;
		}
		if (usize > *zcap) {
			uint8_t *b = realloc(*zbuf, usize);

			if (!b)
				return -ENOMEM;
			*zbuf = b;
			*zcap = usize;
		}
		got = ZSTD_decompress(*zbuf, usize, p, csize);
		if (ZSTD_isError(got) || got != usize) {
			*bad += usize / t->page_size ? usize / t->page_size : 1;
			continue;
		}
		r = decode_pages(dc, *zbuf, usize, cpu, out, aux);
		if (r)
			return r;
	}
	return 0;
}

static int cmp_ts_seq(const void *a, const void *b)
{
	const struct dc_record *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return (x->reserved > y->reserved) - (x->reserved < y->reserved);
}

/*
 * A CPU's events are in time order as the kernel wrote them; a file that
 * says otherwise (edited, corrupt) is put in order, keeping the file's
 * order among equal times, so the merge below stays correct.
 */
static void sort_if_needed(struct dc_recbuf *b)
{
	size_t i;

	for (i = 1; i < b->n; i++)
		if (b->rec[i - 1].ts > b->rec[i].ts)
			break;
	if (i >= b->n)
		return;
	for (i = 0; i < b->n; i++)
		b->rec[i].reserved = (uint32_t)i;
	qsort(b->rec, b->n, sizeof(*b->rec), cmp_ts_seq);
	for (i = 0; i < b->n; i++)
		b->rec[i].reserved = 0;
}

int dc_tdread_decode(struct dc_tdread *t, const struct dc_bdi *bdis, size_t nbdis,
		     struct dc_recbuf *out, struct dc_decode_stats *st)
{
	/* Streams 0..n-1: the CPUs' page-cache records; n..2n-1: their vmscan ones. */
	size_t ns = 2 * (size_t)t->ncpus, *head = NULL, total = 0, zcap = 0;
	struct dc_recbuf *s = NULL;
	struct dctx c = { .t = t };
	uint8_t *zbuf = NULL;
	uint64_t bad = 0;
	int r;

	s = calloc(ns ? ns : 1, sizeof(*s));
	head = calloc(ns ? ns : 1, sizeof(*head));
	if (!s || !head) {
		r = -ENOMEM;
		goto out;
	}
	for (int k = 0; k < DC_AUX_NR; k++)
		c.any_aux |= t->aux_id[k] != 0;
	c.kb = kbuffer_alloc(t->long_size == 8 ? KBUFFER_LSIZE_8 : KBUFFER_LSIZE_4,
			     __BYTE_ORDER == __LITTLE_ENDIAN ? KBUFFER_ENDIAN_LITTLE :
							      KBUFFER_ENDIAN_BIG);
	if (!c.kb) {
		r = -ENOMEM;
		goto out;
	}
	{
		struct dc_decoder_opts o = {
			.sz = sizeof(o),
			.long_size = t->long_size,
			.layouts = t->layouts,
			.nlayouts = t->nlayouts,
			.bdis = bdis,
			.nbdis = nbdis,
		};

		r = dc_decoder_new(&o, &c.d);
		if (r)
			goto out;
	}
	for (uint32_t i = 0; i < t->ncpus; i++) {
		const struct td_cpu *cp = &t->cpus[i];
		struct dc_recbuf *pc = &s[i], *aux = &s[t->ncpus + i];

		if (t->zstd && cp->size)
			r = decode_chunks(&c, cp, (uint16_t)i, pc, aux, &zbuf, &zcap, &bad);
		else
			r = decode_pages(&c, t->buf + cp->offset, cp->size, (uint16_t)i, pc, aux);
		if (r)
			goto out;
		sort_if_needed(pc);
		sort_if_needed(aux);
		total += pc->n + aux->n;
	}
	r = dc_recbuf_reserve(out, total);
	if (r)
		goto out;
	/*
	 * Each stream is in time order (the ring buffer writes a CPU's
	 * events so); merge them. Ties go to the lower stream: page-cache
	 * records before vmscan ones, lower CPUs first.
	 */
	for (size_t k = 0; k < total; k++) {
		size_t best = SIZE_MAX;

		for (size_t i = 0; i < ns; i++) {
			if (head[i] >= s[i].n)
				continue;
			if (best == SIZE_MAX || s[i].rec[head[i]].ts < s[best].rec[head[best]].ts)
				best = i;
		}
		out->rec[out->n++] = s[best].rec[head[best]++];
	}
	r = 0;
out:
	free(zbuf);
	if (st && c.d) {
		*st = *dc_decoder_stats(c.d);
		st->bad_pages += bad;
	}
	dc_decoder_free(c.d);
	if (c.kb)
		kbuffer_free(c.kb);
	for (size_t i = 0; s && i < ns; i++)
		dc_recbuf_free(&s[i]);
	free(s);
	free(head);
	return r;
}

bool dc_tdread_has(const struct dc_tdread *t, enum dc_src src)
{
	return (unsigned int)src < DC_SRC_NR && t->has[src];
}

bool dc_tdread_has_aux(const struct dc_tdread *t, enum dc_td_aux aux)
{
	return (unsigned int)aux < DC_AUX_NR && t->aux_id[aux];
}

const char *dc_tdread_comm(const struct dc_tdread *t, int pid)
{
	size_t lo = 0, hi = t->ncmds;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (t->cmds[mid].pid == pid)
			return t->cmds[mid].comm;
		if (t->cmds[mid].pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int dc_tdread_version(const struct dc_tdread *t)
{
	return t->version;
}

unsigned int dc_tdread_ncpus(const struct dc_tdread *t)
{
	return t->ncpus;
}

const char *dc_tdread_clock(const struct dc_tdread *t)
{
	return t->clock[0] ? t->clock : "unknown";
}

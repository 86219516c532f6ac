// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The --loads events' layouts (tdread.h): readahead's calls and filemap's
 * reads and faults, their fields found by name in the event's format
 * text (so a kernel that moves them still decodes, and one that changes
 * their type is left out rather than misread). Pure: text and bytes in,
 * records out; used by the trace.dat reader and by duet top's live view.
 */
#include <stdlib.h>
#include <string.h>

#include "tdread.h"

static const char *const load_events[] = {
	"readahead/page_cache_sync_ra",
	"readahead/page_cache_async_ra",
	"readahead/page_cache_ra_order",
	"readahead/page_cache_ra_unbounded",
	"filemap/mm_filemap_get_pages",
	"filemap/mm_filemap_fault",
	NULL,
};

const char *const *dc_load_events(void)
{
	return load_events;
}

int dc_format_field(const char *text, size_t len, const char *decl, unsigned int size,
		    uint16_t *off)
{
	char key[96];
	const char *p, *end = text + len;
	char *e;
	unsigned long o, sz;

	if (strlen(decl) + 16 > sizeof(key))
		return -1;
	strcpy(key, "field:");
	strcat(key, decl);
	strcat(key, ";\toffset:");
	p = memmem(text, len, key, strlen(key));
	if (!p)
		return -1;
	p += strlen(key);
	o = strtoul(p, &e, 10);
	if (e >= end || strncmp(e, ";\tsize:", 7))
		return -1;
	sz = strtoul(e + 7, &e, 10);
	if (e >= end || *e != ';' || sz != size || o < 8 || o > 4096)
		return -1;
	*off = (uint16_t)o;
	return 0;
}

static void reach(struct dc_load_fields *f, uint16_t off, unsigned int size)
{
	if (off + size > f->end)
		f->end = (uint16_t)(off + size);
}

int dc_load_fields_parse(struct dc_load_fields *f, int kind, const char *text, size_t len)
{
	memset(f, 0, sizeof(*f));
	if (kind < DC_AUX_FIRST_LOAD || kind >= DC_AUX_NR ||
	    dc_format_field(text, len, "unsigned long i_ino", 8, &f->ino) ||
	    dc_format_field(text, len, "dev_t s_dev", 4, &f->dev) ||
	    dc_format_field(text, len, "unsigned long index", 8, &f->index))
		return -1;
	if (kind == DC_AUX_RA_UNBOUNDED) {
		if (dc_format_field(text, len, "unsigned long nr_to_read", 8, &f->count))
			return -1;
		f->count_size = 8;
	} else if (kind == DC_AUX_READ) {
		if (dc_format_field(text, len, "unsigned long last_index", 8, &f->last))
			return -1;
		reach(f, f->last, 8);
	} else if (kind != DC_AUX_FAULT) {
		if (dc_format_field(text, len, "unsigned int size", 4, &f->count))
			return -1;
		f->count_size = 4;
	}
	reach(f, f->ino, 8);
	reach(f, f->dev, 4);
	reach(f, f->index, 8);
	if (f->count_size)
		reach(f, f->count, f->count_size);
	return 0;
}

void dc_load_decode(const struct dc_load_fields *f, int kind, const void *data,
		    struct dc_record *rec)
{
	const uint8_t *d = data;
	uint64_t v = 0;
	uint32_t v32 = 0;

	rec->type = DC_TDR_LOAD;
	rec->reserved = (uint32_t)kind;
	memcpy(&rec->ino, d + f->ino, 8);
	memcpy(&rec->dev, d + f->dev, 4);
	memcpy(&rec->index, d + f->index, 8);
	if (f->count_size == 8) {
		memcpy(&v, d + f->count, 8);
	} else if (f->count_size == 4) {
		memcpy(&v32, d + f->count, 4);
		v = v32;
	} else if (kind == DC_AUX_READ) {
		memcpy(&v, d + f->last, 8);
		v = v >= rec->index ? v - rec->index + 1 : 0;
	} else {
		v = 1;
	}
	rec->count = v;
}

/*
 * hv/wire.h - helpers shared by every wire-format header.
 *
 * Every multi-byte field on the Hyper-V wire is little-endian. Wire structs
 * keep the raw little-endian representation in their uintN_t fields; code
 * reads and writes them only through the helpers below, so a big-endian
 * port (s390x) or a fuzzer on any host stays correct. On little-endian
 * targets the helpers compile to nothing.
 *
 * Freestanding: only compiler-provided headers.
 */
#ifndef HV_WIRE_H
#define HV_WIRE_H

#include <stddef.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HV_BIG_ENDIAN 1
#else
#define HV_BIG_ENDIAN 0
#endif

static inline uint16_t hv_le16(uint16_t v)
{
#if HV_BIG_ENDIAN
	return __builtin_bswap16(v);
#else
	return v;
#endif
}

static inline uint32_t hv_le32(uint32_t v)
{
#if HV_BIG_ENDIAN
	return __builtin_bswap32(v);
#else
	return v;
#endif
}

static inline uint64_t hv_le64(uint64_t v)
{
#if HV_BIG_ENDIAN
	return __builtin_bswap64(v);
#else
	return v;
#endif
}

/* Conversions are their own inverse; the names say the direction. */
#define hv_cpu_to_le16(v) hv_le16(v)
#define hv_cpu_to_le32(v) hv_le32(v)
#define hv_cpu_to_le64(v) hv_le64(v)
#define hv_le16_to_cpu(v) hv_le16(v)
#define hv_le32_to_cpu(v) hv_le32(v)
#define hv_le64_to_cpu(v) hv_le64(v)

/* Unaligned little-endian loads and stores on byte buffers. */
static inline uint16_t hv_get_le16(const void *p)
{
	const uint8_t *b = (const uint8_t *)p;
	return (uint16_t)(b[0] | (b[1] << 8));
}

static inline uint32_t hv_get_le32(const void *p)
{
	const uint8_t *b = (const uint8_t *)p;
	return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
	       ((uint32_t)b[3] << 24);
}

static inline uint64_t hv_get_le64(const void *p)
{
	const uint8_t *b = (const uint8_t *)p;
	return (uint64_t)hv_get_le32(b) | ((uint64_t)hv_get_le32(b + 4) << 32);
}

static inline void hv_put_le16(void *p, uint16_t v)
{
	uint8_t *b = (uint8_t *)p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}

static inline void hv_put_le32(void *p, uint32_t v)
{
	uint8_t *b = (uint8_t *)p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)(v >> 16);
	b[3] = (uint8_t)(v >> 24);
}

static inline void hv_put_le64(void *p, uint64_t v)
{
	hv_put_le32(p, (uint32_t)v);
	hv_put_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

/* Compile-time layout checks: every wire struct gets both. */
#define HV_ASSERT_SIZE(type, size) \
	_Static_assert(sizeof(type) == (size), #type " size")
#define HV_ASSERT_OFFSET(type, field, off) \
	_Static_assert(offsetof(type, field) == (off), #type "." #field " offset")

/* Hyper-V pages are 4 KiB whatever the guest's own page size. */
#define HV_PAGE_SHIFT 12
#define HV_PAGE_SIZE  4096u
#define HV_PAGE_MASK  (HV_PAGE_SIZE - 1)

/*
 * GUID in the Microsoft mixed-endian wire layout (spec/vmbus-core.md 7.1):
 * Data1 u32 LE, Data2 u16 LE, Data3 u16 LE, Data4 8 bytes as written.
 * Stored as the 16 wire bytes; HV_GUID() builds one from the textual form.
 */
struct hv_guid {
	uint8_t g_bytes[16];
};
HV_ASSERT_SIZE(struct hv_guid, 16);

#define HV_GUID(d1, d2, d3, b0, b1, b2, b3, b4, b5, b6, b7)                  \
	{ {                                                                 \
		(uint8_t)(d1), (uint8_t)((d1) >> 8), (uint8_t)((d1) >> 16),  \
		(uint8_t)((d1) >> 24), (uint8_t)(d2), (uint8_t)((d2) >> 8),  \
		(uint8_t)(d3), (uint8_t)((d3) >> 8), b0, b1, b2, b3, b4, b5, \
		b6, b7                                                      \
	} }

static inline int hv_guid_equal(const struct hv_guid *a, const struct hv_guid *b)
{
	for (int i = 0; i < 16; i++)
		if (a->g_bytes[i] != b->g_bytes[i])
			return 0;
	return 1;
}

#endif /* HV_WIRE_H */

/*
 * hv/scsi.h - the SCSI subset a StorVSC guest sends and a storvsp target
 * answers: opcodes, status bytes, sense keys, ASC/ASCQ, fixed-format
 * sense data. These are standard SCSI (SPC/SBC) values, carried in the
 * CDB and sense areas of struct vmscsi_request (hv/vstor.h).
 *
 * SCSI fields inside CDBs and data are big-endian (unlike the VMBus
 * wire); use the hv_get_be*()/hv_put_be*() helpers below on byte buffers.
 *
 * Freestanding: only hv/wire.h.
 */
#ifndef HV_SCSI_H
#define HV_SCSI_H

#include "hv/wire.h"

/* ---- Operation codes ---- */

#define SCSI_TEST_UNIT_READY		0x00u
#define SCSI_REQUEST_SENSE		0x03u
#define SCSI_INQUIRY			0x12u
#define SCSI_MODE_SELECT_6		0x15u
#define SCSI_MODE_SENSE_6		0x1Au
#define SCSI_START_STOP_UNIT		0x1Bu
#define SCSI_PREVENT_ALLOW_MEDIUM_REMOVAL 0x1Eu
#define SCSI_READ_CAPACITY_10		0x25u
#define SCSI_READ_10			0x28u
#define SCSI_WRITE_10			0x2Au
#define SCSI_SET_WINDOW			0x24u	/* L filters it on <= WIN8 */
#define SCSI_VERIFY_10			0x2Fu
#define SCSI_SYNCHRONIZE_CACHE_10	0x35u
#define SCSI_WRITE_SAME_10		0x41u	/* L filters it on <= WIN8 */
#define SCSI_UNMAP			0x42u
#define SCSI_MODE_SELECT_10		0x55u
#define SCSI_MODE_SENSE_10		0x5Au
#define SCSI_ATA_PASSTHROUGH_16		0x85u
#define SCSI_READ_16			0x88u
#define SCSI_WRITE_16			0x8Au
#define SCSI_SYNCHRONIZE_CACHE_16	0x91u
#define SCSI_WRITE_SAME_16		0x93u
#define SCSI_SERVICE_ACTION_IN_16	0x9Eu	/* READ CAPACITY (16) */
#define SCSI_SAI_READ_CAPACITY_16	0x10u	/* service action, CDB byte 1 */
#define SCSI_REPORT_LUNS		0xA0u
#define SCSI_READ_12			0xA8u
#define SCSI_WRITE_12			0xAAu

/* CDB lengths by group code (opcode bits 7-5). */
#define SCSI_CDB6_LEN			6u
#define SCSI_CDB10_LEN			10u
#define SCSI_CDB12_LEN			12u
#define SCSI_CDB16_LEN			16u

/* ---- Status byte ---- */

#define SCSI_STATUS_GOOD		0x00u
#define SCSI_STATUS_CHECK_CONDITION	0x02u
#define SCSI_STATUS_CONDITION_MET	0x04u
#define SCSI_STATUS_BUSY		0x08u
#define SCSI_STATUS_RESERVATION_CONFLICT 0x18u
#define SCSI_STATUS_TASK_SET_FULL	0x28u

/* ---- Sense keys ---- */

#define SCSI_SENSE_NO_SENSE		0x0u
#define SCSI_SENSE_RECOVERED_ERROR	0x1u
#define SCSI_SENSE_NOT_READY		0x2u
#define SCSI_SENSE_MEDIUM_ERROR		0x3u
#define SCSI_SENSE_HARDWARE_ERROR	0x4u
#define SCSI_SENSE_ILLEGAL_REQUEST	0x5u
#define SCSI_SENSE_UNIT_ATTENTION	0x6u
#define SCSI_SENSE_DATA_PROTECT		0x7u
#define SCSI_SENSE_BLANK_CHECK		0x8u
#define SCSI_SENSE_ABORTED_COMMAND	0xBu
#define SCSI_SENSE_VOLUME_OVERFLOW	0xDu
#define SCSI_SENSE_MISCOMPARE		0xEu

/* ---- Additional sense code / qualifier pairs ---- */

#define SCSI_ASC_NO_ADDITIONAL_SENSE	0x00u
#define SCSI_ASC_UNRECOVERED_READ_ERROR	0x11u	/* medium error, ASCQ 0 */
#define SCSI_ASC_WRITE_ERROR		0x0Cu	/* medium error on write, ASCQ 0 */
#define SCSI_ASC_INVALID_OPCODE		0x20u	/* ASCQ 0 */
#define SCSI_ASC_LBA_OUT_OF_RANGE	0x21u	/* ASCQ 0 */
#define SCSI_ASC_INVALID_FIELD_IN_CDB	0x24u	/* ASCQ 0 */
#define SCSI_ASC_LUN_NOT_SUPPORTED	0x25u	/* ASCQ 0 */
#define SCSI_ASC_INVALID_FIELD_IN_PARAM_LIST 0x26u /* ASCQ 0 */
#define SCSI_ASC_WRITE_PROTECTED	0x27u	/* ASCQ 0 */
#define SCSI_ASC_POWER_ON_RESET		0x29u	/* unit attention, ASCQ 0 */
#define SCSI_ASC_PARAMETERS_CHANGED	0x2Au
#define SCSI_ASCQ_CAPACITY_DATA_CHANGED	0x09u	/* with ASC 0x2A: L rescans */
#define SCSI_ASC_TARGET_CHANGED		0x3Fu	/* L rescans except ASCQ 03/0E */
#define SCSI_ASCQ_MICROCODE_CHANGED	0x01u
#define SCSI_ASCQ_INQUIRY_DATA_CHANGED	0x03u
#define SCSI_ASCQ_REPORTED_LUNS_CHANGED	0x0Eu
#define SCSI_ASC_MEDIUM_NOT_PRESENT	0x3Au	/* not ready, ASCQ 0 */
#define SCSI_ASC_SPACE_ALLOCATION_FAILED 0x27u	/* with ASCQ 0x07: no space */
#define SCSI_ASCQ_SPACE_ALLOCATION_FAILED 0x07u	/* data protect */
#define SCSI_ASC_INTERNAL_TARGET_FAILURE 0x44u	/* hardware error, ASCQ 0 */

/* ---- Fixed-format sense data (18 bytes; fits VSTOR's 20/18) ---- */

#define SCSI_SENSE_RESPONSE_CURRENT	0x70u	/* fixed format, current */
#define SCSI_SENSE_RESPONSE_DEFERRED	0x71u
#define SCSI_SENSE_VALID		0x80u	/* bit 7 of byte 0: info valid */

struct scsi_sense_fixed {
	uint8_t  ss_response_code;	/* SCSI_SENSE_RESPONSE_CURRENT [| VALID] */
	uint8_t  ss_obsolete;
	uint8_t  ss_sense_key;		/* bits 0-3 sense key */
	uint8_t  ss_information[4];	/* big-endian */
	uint8_t  ss_add_sense_len;	/* bytes after this one: 10 */
	uint8_t  ss_cmd_specific[4];	/* big-endian */
	uint8_t  ss_asc;
	uint8_t  ss_ascq;
	uint8_t  ss_fru;
	uint8_t  ss_sense_key_specific[3];
};
HV_ASSERT_SIZE(struct scsi_sense_fixed, 18);
HV_ASSERT_OFFSET(struct scsi_sense_fixed, ss_sense_key, 2);
HV_ASSERT_OFFSET(struct scsi_sense_fixed, ss_add_sense_len, 7);
HV_ASSERT_OFFSET(struct scsi_sense_fixed, ss_asc, 12);
HV_ASSERT_OFFSET(struct scsi_sense_fixed, ss_ascq, 13);

#define SCSI_SENSE_FIXED_SIZE		18u
#define SCSI_SENSE_FIXED_ADD_LEN	10u
#define SCSI_SENSE_KEY_MASK		0x0Fu

/* ---- INQUIRY ---- */

#define SCSI_INQUIRY_EVPD		0x01u	/* CDB byte 1 */
#define SCSI_INQUIRY_STD_LEN		36u	/* standard data, bytes */
#define SCSI_VPD_SUPPORTED_PAGES	0x00u
#define SCSI_VPD_UNIT_SERIAL		0x80u
#define SCSI_VPD_DEVICE_ID		0x83u
#define SCSI_VPD_BLOCK_LIMITS		0xB0u
#define SCSI_VPD_BLOCK_CHARACTERISTICS	0xB1u
#define SCSI_VPD_LOGICAL_BLOCK_PROVISIONING 0xB2u
#define SCSI_PERIPHERAL_DISK		0x00u
#define SCSI_PERIPHERAL_CDROM		0x05u
#define SCSI_PERIPHERAL_NO_LUN		0x7Fu	/* qualifier 3, type 0x1F */
#define SCSI_VERSION_SPC2		0x04u
#define SCSI_VERSION_SPC3		0x05u
#define SCSI_VERSION_SPC4		0x06u

/* ---- READ CAPACITY ---- */

#define SCSI_READ_CAPACITY_10_LEN	8u	/* bytes of data */
#define SCSI_READ_CAPACITY_16_LEN	32u

/* ---- Mode pages ---- */

#define SCSI_MODE_PAGE_CACHING		0x08u
#define SCSI_MODE_PAGE_CONTROL		0x0Au
#define SCSI_MODE_PAGE_ALL		0x3Fu
#define SCSI_MODE_DEVSPEC_WP		0x80u	/* write protect, header byte */

/* ---- Big-endian helpers for CDB and data fields ---- */

static inline uint16_t hv_get_be16(const void *p)
{
	const uint8_t *b = (const uint8_t *)p;
	return (uint16_t)((b[0] << 8) | b[1]);
}

static inline uint32_t hv_get_be32(const void *p)
{
	const uint8_t *b = (const uint8_t *)p;
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) |
	       ((uint32_t)b[2] << 8) | (uint32_t)b[3];
}

static inline uint64_t hv_get_be64(const void *p)
{
	const uint8_t *b = (const uint8_t *)p;
	return ((uint64_t)hv_get_be32(b) << 32) | (uint64_t)hv_get_be32(b + 4);
}

static inline void hv_put_be16(void *p, uint16_t v)
{
	uint8_t *b = (uint8_t *)p;
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static inline void hv_put_be32(void *p, uint32_t v)
{
	uint8_t *b = (uint8_t *)p;
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

static inline void hv_put_be64(void *p, uint64_t v)
{
	hv_put_be32(p, (uint32_t)(v >> 32));
	hv_put_be32((uint8_t *)p + 4, (uint32_t)v);
}

#endif /* HV_SCSI_H */

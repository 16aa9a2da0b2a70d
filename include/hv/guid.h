/*
 * hv/guid.h - well-known VMBus device class and instance GUIDs.
 *
 * Facts from shared/spec/vmbus-core.md section 7. Each GUID comes in two
 * forms:
 *   HV_GUID_<X>_INIT  brace initializer, for static tables/objects;
 *   HV_GUID_<X>       a const compound literal, usable as &HV_GUID_<X>,
 *                     e.g. hv_guid_equal(&offer_type, &HV_GUID_NETVSC).
 * Wire byte order: Data1 u32 LE, Data2 u16 LE, Data3 u16 LE, Data4 as
 * written (HV_GUID() in hv/wire.h).
 *
 * hv_guid_class_lookup() maps a class GUID to a short name ("network",
 * "scsi", "heartbeat", ...) and a description, for lsvmbus-style tools.
 *
 * Freestanding: only compiler-provided headers.
 */
#ifndef HV_GUID_H
#define HV_GUID_H

#include <stddef.h>
#include <stdint.h>

#include "hv/wire.h"

#define HV_GUID_CONST(init)	((const struct hv_guid)init)

/* ---- 7.2 Interface-type (class) GUIDs ----------------------------------- */

/* Synthetic network (NetVSC) {f8615163-df3e-46c5-913f-f2d2f965ed0e} */
#define HV_GUID_NETVSC_INIT \
	HV_GUID(0xf8615163, 0xdf3e, 0x46c5, 0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e)
/* Synthetic SCSI (StorVSC) {ba6163d9-04a1-4d29-b605-72e2ffb1dc7f} */
#define HV_GUID_STORVSC_INIT \
	HV_GUID(0xba6163d9, 0x04a1, 0x4d29, 0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f)
/* IDE accelerator (StorVSC for IDE disks) {32412632-86cb-44a2-9b5c-50d1417354f5} */
#define HV_GUID_IDE_INIT \
	HV_GUID(0x32412632, 0x86cb, 0x44a2, 0x9b, 0x5c, 0x50, 0xd1, 0x41, 0x73, 0x54, 0xf5)
/* Synthetic Fibre Channel {2f9bcc4a-0069-4af3-b76b-6fd0be528cda} */
#define HV_GUID_FC_INIT \
	HV_GUID(0x2f9bcc4a, 0x0069, 0x4af3, 0xb7, 0x6b, 0x6f, 0xd0, 0xbe, 0x52, 0x8c, 0xda)
/* Heartbeat IC {57164f39-9115-4e78-ab55-382f3bd5422d} */
#define HV_GUID_HEARTBEAT_INIT \
	HV_GUID(0x57164f39, 0x9115, 0x4e78, 0xab, 0x55, 0x38, 0x2f, 0x3b, 0xd5, 0x42, 0x2d)
/* Shutdown IC {0e0b6031-5213-4934-818b-38d90ced39db} */
#define HV_GUID_SHUTDOWN_INIT \
	HV_GUID(0x0e0b6031, 0x5213, 0x4934, 0x81, 0x8b, 0x38, 0xd9, 0x0c, 0xed, 0x39, 0xdb)
/* Time sync IC {9527e630-d0ae-497b-adce-e80ab0175caf} */
#define HV_GUID_TIMESYNC_INIT \
	HV_GUID(0x9527e630, 0xd0ae, 0x497b, 0xad, 0xce, 0xe8, 0x0a, 0xb0, 0x17, 0x5c, 0xaf)
/* KVP (data exchange) IC {a9a0f4e7-5a45-4d96-b827-8a841e8c03e6} */
#define HV_GUID_KVP_INIT \
	HV_GUID(0xa9a0f4e7, 0x5a45, 0x4d96, 0xb8, 0x27, 0x8a, 0x84, 0x1e, 0x8c, 0x03, 0xe6)
/* VSS (backup) IC {35fa2e29-ea23-4236-96ae-3a6ebacba440} */
#define HV_GUID_VSS_INIT \
	HV_GUID(0x35fa2e29, 0xea23, 0x4236, 0x96, 0xae, 0x3a, 0x6e, 0xba, 0xcb, 0xa4, 0x40)
/* File copy ("guest services") {34d14be3-dee4-41c8-9ae7-6b174977c192} */
#define HV_GUID_FCOPY_INIT \
	HV_GUID(0x34d14be3, 0xdee4, 0x41c8, 0x9a, 0xe7, 0x6b, 0x17, 0x49, 0x77, 0xc1, 0x92)
/* Dynamic memory (balloon) {525074dc-8985-46e2-8057-a307dc18a502} */
#define HV_GUID_DM_INIT \
	HV_GUID(0x525074dc, 0x8985, 0x46e2, 0x80, 0x57, 0xa3, 0x07, 0xdc, 0x18, 0xa5, 0x02)
/* Synthetic keyboard {f912ad6d-2b17-48ea-bd65-f927a61c7684} */
#define HV_GUID_KBD_INIT \
	HV_GUID(0xf912ad6d, 0x2b17, 0x48ea, 0xbd, 0x65, 0xf9, 0x27, 0xa6, 0x1c, 0x76, 0x84)
/* Synthetic mouse (HID) {cfa8b69e-5b4a-4cc0-b98b-8ba1a1f3f95a} */
#define HV_GUID_MOUSE_INIT \
	HV_GUID(0xcfa8b69e, 0x5b4a, 0x4cc0, 0xb9, 0x8b, 0x8b, 0xa1, 0xa1, 0xf3, 0xf9, 0x5a)
/* Synthetic video (framebuffer) {da0a7802-e377-4aac-8e77-0558eb1073f8} */
#define HV_GUID_SYNTHVID_INIT \
	HV_GUID(0xda0a7802, 0xe377, 0x4aac, 0x8e, 0x77, 0x05, 0x58, 0xeb, 0x10, 0x73, 0xf8)
/* PCI pass-through (vPCI) {44c4f61d-4444-4400-9d52-802e27ede19f} */
#define HV_GUID_PCIE_INIT \
	HV_GUID(0x44c4f61d, 0x4444, 0x4400, 0x9d, 0x52, 0x80, 0x2e, 0x27, 0xed, 0xe1, 0x9f)
/* NetworkDirect / RDMA {8c2eaf3d-32a7-4b09-ab99-bd1f1c86b501} */
#define HV_GUID_ND_INIT \
	HV_GUID(0x8c2eaf3d, 0x32a7, 0x4b09, 0xab, 0x99, 0xbd, 0x1f, 0x1c, 0x86, 0xb5, 0x01)
/* Remote Desktop Virtualization {276aacf4-ac15-426c-98dd-7521ad3f01fe} */
#define HV_GUID_RDV_INIT \
	HV_GUID(0x276aacf4, 0xac15, 0x426c, 0x98, 0xdd, 0x75, 0x21, 0xad, 0x3f, 0x01, 0xfe)
/* AVMA 1 (automatic activation) {f8e65716-3cb3-4a06-9a60-1889c5cccab5} */
#define HV_GUID_AVMA1_INIT \
	HV_GUID(0xf8e65716, 0x3cb3, 0x4a06, 0x9a, 0x60, 0x18, 0x89, 0xc5, 0xcc, 0xca, 0xb5)
/* AVMA 2 / inherited activation {3375baf4-9e15-4b30-b765-67acb10d607b} */
#define HV_GUID_AVMA2_INIT \
	HV_GUID(0x3375baf4, 0x9e15, 0x4b30, 0xb7, 0x65, 0x67, 0xac, 0xb1, 0x0d, 0x60, 0x7b)
/* IMC / VMBus file system (vmbfs) {c376c1c3-d276-48d2-90a9-c04748072c60} */
#define HV_GUID_VMBFS_INIT \
	HV_GUID(0xc376c1c3, 0xd276, 0x48d2, 0x90, 0xa9, 0xc0, 0x47, 0x48, 0x07, 0x2c, 0x60)
/* Synthetic 3D video {113560ea-48cd-4bd1-8828-fcec44e2b5d5} (single source) */
#define HV_GUID_SYNTH3DVID_INIT \
	HV_GUID(0x113560ea, 0x48cd, 0x4bd1, 0x88, 0x28, 0xfc, 0xec, 0x44, 0xe2, 0xb5, 0xd5)
/* VMBus serial (COM) {8b60ccf6-709f-4c11-90b5-229c959a9e6a} (single source) */
#define HV_GUID_SERIAL_INIT \
	HV_GUID(0x8b60ccf6, 0x709f, 0x4c11, 0x90, 0xb5, 0x22, 0x9c, 0x95, 0x9a, 0x9e, 0x6a)
/*
 * Echo test device {7a1e6c3d-5b0e-4f5b-9c1e-3d5f7e9a0b21}: NOT a Hyper-V
 * device. Made up by this project for its own echo VSP/VSC test pair.
 */
#define HV_GUID_ECHO_INIT \
	HV_GUID(0x7a1e6c3d, 0x5b0e, 0x4f5b, 0x9c, 0x1e, 0x3d, 0x5f, 0x7e, 0x9a, 0x0b, 0x21)

#define HV_GUID_NETVSC		HV_GUID_CONST(HV_GUID_NETVSC_INIT)
#define HV_GUID_STORVSC		HV_GUID_CONST(HV_GUID_STORVSC_INIT)
#define HV_GUID_IDE		HV_GUID_CONST(HV_GUID_IDE_INIT)
#define HV_GUID_FC		HV_GUID_CONST(HV_GUID_FC_INIT)
#define HV_GUID_HEARTBEAT	HV_GUID_CONST(HV_GUID_HEARTBEAT_INIT)
#define HV_GUID_SHUTDOWN	HV_GUID_CONST(HV_GUID_SHUTDOWN_INIT)
#define HV_GUID_TIMESYNC	HV_GUID_CONST(HV_GUID_TIMESYNC_INIT)
#define HV_GUID_KVP		HV_GUID_CONST(HV_GUID_KVP_INIT)
#define HV_GUID_VSS		HV_GUID_CONST(HV_GUID_VSS_INIT)
#define HV_GUID_FCOPY		HV_GUID_CONST(HV_GUID_FCOPY_INIT)
#define HV_GUID_DM		HV_GUID_CONST(HV_GUID_DM_INIT)
#define HV_GUID_KBD		HV_GUID_CONST(HV_GUID_KBD_INIT)
#define HV_GUID_MOUSE		HV_GUID_CONST(HV_GUID_MOUSE_INIT)
#define HV_GUID_SYNTHVID	HV_GUID_CONST(HV_GUID_SYNTHVID_INIT)
#define HV_GUID_PCIE		HV_GUID_CONST(HV_GUID_PCIE_INIT)
#define HV_GUID_ND		HV_GUID_CONST(HV_GUID_ND_INIT)
#define HV_GUID_RDV		HV_GUID_CONST(HV_GUID_RDV_INIT)
#define HV_GUID_AVMA1		HV_GUID_CONST(HV_GUID_AVMA1_INIT)
#define HV_GUID_AVMA2		HV_GUID_CONST(HV_GUID_AVMA2_INIT)
#define HV_GUID_VMBFS		HV_GUID_CONST(HV_GUID_VMBFS_INIT)
#define HV_GUID_SYNTH3DVID	HV_GUID_CONST(HV_GUID_SYNTH3DVID_INIT)
#define HV_GUID_SERIAL		HV_GUID_CONST(HV_GUID_SERIAL_INIT)
#define HV_GUID_ECHO		HV_GUID_CONST(HV_GUID_ECHO_INIT)

/* ---- 7.3 OVMM singleton instance GUIDs (single source: OVMM) ------------ */

/* KVP {242ff919-07db-4180-9c2e-b86cb68c8c55} */
#define HV_GUID_INST_KVP_INIT \
	HV_GUID(0x242ff919, 0x07db, 0x4180, 0x9c, 0x2e, 0xb8, 0x6c, 0xb6, 0x8c, 0x8c, 0x55)
/* Shutdown {b6650ff7-33bc-4840-8048-e0676786f393} */
#define HV_GUID_INST_SHUTDOWN_INIT \
	HV_GUID(0xb6650ff7, 0x33bc, 0x4840, 0x80, 0x48, 0xe0, 0x67, 0x67, 0x86, 0xf3, 0x93)
/* Time sync {2dd1ce17-079e-403c-b352-a1921ee207ee} */
#define HV_GUID_INST_TIMESYNC_INIT \
	HV_GUID(0x2dd1ce17, 0x079e, 0x403c, 0xb3, 0x52, 0xa1, 0x92, 0x1e, 0xe2, 0x07, 0xee)
/* Keyboard {d34b2567-b9b6-42b9-8778-0a4ec0b955bf} */
#define HV_GUID_INST_KBD_INIT \
	HV_GUID(0xd34b2567, 0xb9b6, 0x42b9, 0x87, 0x78, 0x0a, 0x4e, 0xc0, 0xb9, 0x55, 0xbf)
/* Mouse {58f75a6d-d949-4320-99e1-a2a2576d581c} */
#define HV_GUID_INST_MOUSE_INIT \
	HV_GUID(0x58f75a6d, 0xd949, 0x4320, 0x99, 0xe1, 0xa2, 0xa2, 0x57, 0x6d, 0x58, 0x1c)
/* vmbfs IMC {c4e5e7d1-d748-4afc-979d-683167910a55} */
#define HV_GUID_INST_VMBFS_INIT \
	HV_GUID(0xc4e5e7d1, 0xd748, 0x4afc, 0x97, 0x9d, 0x68, 0x31, 0x67, 0x91, 0x0a, 0x55)

#define HV_GUID_INST_KVP	HV_GUID_CONST(HV_GUID_INST_KVP_INIT)
#define HV_GUID_INST_SHUTDOWN	HV_GUID_CONST(HV_GUID_INST_SHUTDOWN_INIT)
#define HV_GUID_INST_TIMESYNC	HV_GUID_CONST(HV_GUID_INST_TIMESYNC_INIT)
#define HV_GUID_INST_KBD	HV_GUID_CONST(HV_GUID_INST_KBD_INIT)
#define HV_GUID_INST_MOUSE	HV_GUID_CONST(HV_GUID_INST_MOUSE_INIT)
#define HV_GUID_INST_VMBFS	HV_GUID_CONST(HV_GUID_INST_VMBFS_INIT)

/* MSVM's 6.0 InitiateContact client id {18dd3964-3e8a-4e42-86fa-c8e6b191ee0e} */
#define HV_GUID_MSVM_CLIENT_ID_INIT \
	HV_GUID(0x18dd3964, 0x3e8a, 0x4e42, 0x86, 0xfa, 0xc8, 0xe6, 0xb1, 0x91, 0xee, 0x0e)

/* ---- Class name table ----------------------------------------------------- */

struct hv_guid_class {
	struct hv_guid gc_guid;
	const char *gc_name;		/* short name, e.g. "network" */
	const char *gc_desc;		/* human description */
};

/*
 * The class table (spec 7.2 plus HV_GUID_ECHO). Returns the first entry and
 * stores the entry count in *countp (if not NULL).
 */
static inline const struct hv_guid_class *hv_guid_classes(size_t *countp)
{
	static const struct hv_guid_class classes[] = {
		{ HV_GUID_NETVSC_INIT, "network", "Synthetic network adapter" },
		{ HV_GUID_STORVSC_INIT, "scsi", "Synthetic SCSI controller" },
		{ HV_GUID_IDE_INIT, "ide", "Synthetic IDE controller" },
		{ HV_GUID_FC_INIT, "fc", "Synthetic Fibre Channel adapter" },
		{ HV_GUID_HEARTBEAT_INIT, "heartbeat", "Heartbeat" },
		{ HV_GUID_SHUTDOWN_INIT, "shutdown", "Guest shutdown" },
		{ HV_GUID_TIMESYNC_INIT, "timesync", "Time synchronization" },
		{ HV_GUID_KVP_INIT, "kvp", "Data exchange (KVP)" },
		{ HV_GUID_VSS_INIT, "vss", "Backup (volume shadow copy)" },
		{ HV_GUID_FCOPY_INIT, "fcopy", "Guest services (file copy)" },
		{ HV_GUID_DM_INIT, "balloon", "Dynamic memory" },
		{ HV_GUID_KBD_INIT, "keyboard", "Synthetic keyboard" },
		{ HV_GUID_MOUSE_INIT, "mouse", "Synthetic mouse" },
		{ HV_GUID_SYNTHVID_INIT, "video", "Synthetic video" },
		{ HV_GUID_PCIE_INIT, "pci", "PCI express pass-through" },
		{ HV_GUID_ND_INIT, "rdma", "NetworkDirect (RDMA)" },
		{ HV_GUID_RDV_INIT, "rdv", "Remote desktop virtualization" },
		{ HV_GUID_AVMA1_INIT, "avma1", "Automatic VM activation 1" },
		{ HV_GUID_AVMA2_INIT, "avma2", "Automatic VM activation 2" },
		{ HV_GUID_VMBFS_INIT, "vmbfs", "VMBus file system (IMC)" },
		{ HV_GUID_SYNTH3DVID_INIT, "video3d", "Synthetic 3D video" },
		{ HV_GUID_SERIAL_INIT, "serial", "VMBus serial port" },
		{ HV_GUID_ECHO_INIT, "echo", "vmbus project echo test device" },
	};
	if (countp)
		*countp = sizeof(classes) / sizeof(classes[0]);
	return classes;
}

/* The class entry for a class GUID, or NULL if unknown. */
static inline const struct hv_guid_class *
hv_guid_class_lookup(const struct hv_guid *g)
{
	size_t n;
	const struct hv_guid_class *c = hv_guid_classes(&n);

	for (size_t i = 0; i < n; i++)
		if (hv_guid_equal(&c[i].gc_guid, g))
			return &c[i];
	return NULL;
}

/* Short name of a class GUID ("network", "scsi", ...) or "unknown". */
static inline const char *hv_guid_class_name(const struct hv_guid *g)
{
	const struct hv_guid_class *c = hv_guid_class_lookup(g);

	return c ? c->gc_name : "unknown";
}

/*
 * Format as text "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into buf (at least
 * HV_GUID_STR_LEN bytes, NUL included).
 */
#define HV_GUID_STR_LEN	37u
static inline void hv_guid_to_str(const struct hv_guid *g, char *buf)
{
	/* text order of the wire bytes: Data1..3 are little-endian */
	static const uint8_t order[16] = { 3, 2, 1, 0, 5, 4, 7, 6,
					   8, 9, 10, 11, 12, 13, 14, 15 };
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < 16; i++) {
		uint8_t b = g->g_bytes[order[i]];

		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[o++] = '-';
		buf[o++] = hex[b >> 4];
		buf[o++] = hex[b & 0xF];
	}
	buf[o] = '\0';
}

#endif /* HV_GUID_H */

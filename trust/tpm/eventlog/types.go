package eventlog

import "fmt"

// EventType is a TCG event type (TCG PC Client Platform Firmware Profile, section 10.4.1).
type EventType uint32

// Event types that appear in PC firmware logs.
const (
	EVPrebootCert          EventType = 0x0
	EVPostCode             EventType = 0x1
	EVNoAction             EventType = 0x3
	EVSeparator            EventType = 0x4
	EVAction               EventType = 0x5
	EVEventTag             EventType = 0x6
	EVSCRTMContents        EventType = 0x7
	EVSCRTMVersion         EventType = 0x8
	EVCPUMicrocode         EventType = 0x9
	EVPlatformConfigFlags  EventType = 0xa
	EVTableOfDevices       EventType = 0xb
	EVCompactHash          EventType = 0xc
	EVIPL                  EventType = 0xd
	EVIPLPartitionData     EventType = 0xe
	EVNonhostCode          EventType = 0xf
	EVNonhostConfig        EventType = 0x10
	EVNonhostInfo          EventType = 0x11
	EVOmitBootDeviceEvents EventType = 0x12

	evEFIBase                    EventType = 0x80000000
	EVEFIVariableDriverConfig    EventType = evEFIBase + 0x1
	EVEFIVariableBoot            EventType = evEFIBase + 0x2
	EVEFIBootServicesApplication EventType = evEFIBase + 0x3
	EVEFIBootServicesDriver      EventType = evEFIBase + 0x4
	EVEFIRuntimeServicesDriver   EventType = evEFIBase + 0x5
	EVEFIGPTEvent                EventType = evEFIBase + 0x6
	EVEFIAction                  EventType = evEFIBase + 0x7
	EVEFIPlatformFirmwareBlob    EventType = evEFIBase + 0x8
	EVEFIHandoffTables           EventType = evEFIBase + 0x9
	EVEFIPlatformFirmwareBlob2   EventType = evEFIBase + 0xa
	EVEFIHandoffTables2          EventType = evEFIBase + 0xb
	EVEFIVariableBoot2           EventType = evEFIBase + 0xc
	EVEFIGPTEvent2               EventType = evEFIBase + 0xd
	EVEFIHCRTMEvent              EventType = evEFIBase + 0x10
	EVEFIVariableAuthority       EventType = evEFIBase + 0xe0
	EVEFISPDMFirmwareBlob        EventType = evEFIBase + 0xe1
	EVEFISPDMFirmwareConfig      EventType = evEFIBase + 0xe2
)

var typeNames = map[EventType]string{
	EVPrebootCert:                "EV_PREBOOT_CERT",
	EVPostCode:                   "EV_POST_CODE",
	EVNoAction:                   "EV_NO_ACTION",
	EVSeparator:                  "EV_SEPARATOR",
	EVAction:                     "EV_ACTION",
	EVEventTag:                   "EV_EVENT_TAG",
	EVSCRTMContents:              "EV_S_CRTM_CONTENTS",
	EVSCRTMVersion:               "EV_S_CRTM_VERSION",
	EVCPUMicrocode:               "EV_CPU_MICROCODE",
	EVPlatformConfigFlags:        "EV_PLATFORM_CONFIG_FLAGS",
	EVTableOfDevices:             "EV_TABLE_OF_DEVICES",
	EVCompactHash:                "EV_COMPACT_HASH",
	EVIPL:                        "EV_IPL",
	EVIPLPartitionData:           "EV_IPL_PARTITION_DATA",
	EVNonhostCode:                "EV_NONHOST_CODE",
	EVNonhostConfig:              "EV_NONHOST_CONFIG",
	EVNonhostInfo:                "EV_NONHOST_INFO",
	EVOmitBootDeviceEvents:       "EV_OMIT_BOOT_DEVICE_EVENTS",
	EVEFIVariableDriverConfig:    "EV_EFI_VARIABLE_DRIVER_CONFIG",
	EVEFIVariableBoot:            "EV_EFI_VARIABLE_BOOT",
	EVEFIBootServicesApplication: "EV_EFI_BOOT_SERVICES_APPLICATION",
	EVEFIBootServicesDriver:      "EV_EFI_BOOT_SERVICES_DRIVER",
	EVEFIRuntimeServicesDriver:   "EV_EFI_RUNTIME_SERVICES_DRIVER",
	EVEFIGPTEvent:                "EV_EFI_GPT_EVENT",
	EVEFIAction:                  "EV_EFI_ACTION",
	EVEFIPlatformFirmwareBlob:    "EV_EFI_PLATFORM_FIRMWARE_BLOB",
	EVEFIHandoffTables:           "EV_EFI_HANDOFF_TABLES",
	EVEFIPlatformFirmwareBlob2:   "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
	EVEFIHandoffTables2:          "EV_EFI_HANDOFF_TABLES2",
	EVEFIVariableBoot2:           "EV_EFI_VARIABLE_BOOT2",
	EVEFIGPTEvent2:               "EV_EFI_GPT_EVENT2",
	EVEFIHCRTMEvent:              "EV_EFI_HCRTM_EVENT",
	EVEFIVariableAuthority:       "EV_EFI_VARIABLE_AUTHORITY",
	EVEFISPDMFirmwareBlob:        "EV_EFI_SPDM_FIRMWARE_BLOB",
	EVEFISPDMFirmwareConfig:      "EV_EFI_SPDM_FIRMWARE_CONFIG",
}

// String is the specification's name, or the number for types it does not define.
func (t EventType) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("EV_UNKNOWN_%#x", uint32(t))
}

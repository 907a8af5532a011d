package integratetest

// XPTxtSetup is txtsetup.sif of XP Professional SP2, trimmed to a few
// lines per section but with the real section set and its EOF mark.
var XPTxtSetup = CRLF(`[Version]
signature = "$Windows NT$"
LayoutFile = "layout.inf"

[SetupData]
ProductType = 0
MajorVersion = 5
MinorVersion = 1
Architecture = i386
DefaultPath = \WINDOWS
OsLoadOptions = "/noguiboot /fastdetect"
LoadIdentifier = %wks_id%
SetupSourceDevice = \device\harddisk0\partition1

[SourceDisksNames.x86]
1 = "%cdname%",%cdtagfilei%,,\i386
100 = "%spcdname%",%spcdtagfilei%,,\i386

[SourceDisksFiles]
acpi.sys = 100,,,,,,3_,4,1,,,1,4
pci.sys = 100,,,,,,3_,4,1,,,1,4

[SourceDisksFiles.x86]
ntoskrnl.exe = 100,,,,,,3_,2,0,0,,1,2
ndis.sys = 100,,,,,,3_,4,1,,,1,4
tcpip.sys = 100,,,,,,_x,4,1,,,1,4
e100b325.sys = 100,,,,,,,4,1,,,1,4

[WinntDirectories]
1 = "\"
2 = system32
4 = system32\drivers
45 = Temp

[FileFlags]
oembios.bin = 16

[HardwareIdsDatabase]
PCI\VEN_8086&DEV_1229 = "e100b"
PCI\VEN_8086&DEV_7111 = "pciide"

[BootBusExtenders.Load]
pci = pci.sys
acpi = acpi.sys

[BootBusExtenders]
pci = "PCI Bus Driver",files.pci,pci
acpi = "ACPI Plug & Play Bus Driver",files.acpi,acpi

[BusExtenders.Load]
pcmcia = pcmcia.sys

[BusExtenders]
pcmcia = "PCMCIA Support",files.pcmcia,pcmcia

[InputDevicesSupport.Load]
usbehci = usbehci.sys

[Keyboard.Load]
kbdclass = kbdclass.sys

[Keyboard]
STANDARD = "XT, AT, or Enhanced Keyboard (83-104 keys)",files.i8042,i8042prt

[SCSI.Load]
atapi = atapi.sys,4

[SCSI]
atapi = "Standard IDE/ESDI Hard Disk Controller"

[DiskDrivers.Load]
dmboot = dmboot.sys

[DiskDrivers]
dmboot = "Dynamic Volume Support (dmboot)"

[ScsiClass.Load]
cdrom = cdrom.sys

[FileSystems.Load]
fat = fastfat.sys
ntfs = ntfs.sys

[CdRomDrivers.Load]
cdfs = cdfs.sys

[CdRomDrivers]
cdfs = "CD-ROM File System"

[Strings]
cdname = "Windows XP Professional CD"
cdtagfilei = "\win51ip"
spcdname = "Windows XP Professional Service Pack 2 CD"
spcdtagfilei = "\win51ip.sp2"
wks_id = "Windows XP Professional"
`) + "\x1a"

// XPDosNet is dosnet.inf of XP Professional SP2, trimmed.
var XPDosNet = CRLF(`[Version]
signature="$Windows NT$"
DriverVer=07/01/2001,5.1.2600.2180

[Miscellaneous]
ProductType = 0
MinimumMemory = 50331648

[Directories]
d1 = \i386
d2 = \i386\lang

[Files]
d1,acpi.sys
d1,ndis.sy_

[FloppyFiles.0]
d1,ntdetect.com

[FloppyFiles.1]
d1,ntkrnlmp.ex_

[OptionalSrcDirs]
lang
`)

// XPHiveSys is hivesys.inf of XP Professional SP2 (workstation, SP2), trimmed.
var XPHiveSys = CRLF(`[Version]
Signature = "$Windows NT$"

[AddReg]
HKLM,"SYSTEM\CurrentControlSet\Control\ProductOptions","ProductType",0x00000000,"WinNT"
HKLM,"SYSTEM\CurrentControlSet\Control\Windows","CSDVersion",0x00010001,0x200
HKLM,"SYSTEM\CurrentControlSet\Services\Tcpip","Start",0x00010001,1
`)

// XPHiveSft is hivesft.inf of XP Professional SP2, trimmed.
var XPHiveSft = CRLF(`[Version]
Signature = "$Windows NT$"

[AddReg]
HKLM,"SOFTWARE\Microsoft\Windows NT\CurrentVersion","ProductName",0x00000000,"Microsoft Windows XP"
HKLM,"SOFTWARE\Microsoft\Windows NT\CurrentVersion","CSDVersion",0x00000000,"Service Pack 2"
HKLM,"SOFTWARE\Microsoft\Windows\CurrentVersion","DevicePath",0x00020000,"%SystemRoot%\inf"
HKLM,"SOFTWARE\Microsoft\Windows\CurrentVersion","ProgramFilesDir",0x00000000,"C:\Program Files"
`)

// XPNetTCPIP is nettcpip.inf (packed as NETTCPIP.IN_), trimmed to the
// TCP/IP service install.
var XPNetTCPIP = CRLF(`[Version]
Signature   = "$Windows NT$"
Class       = NetTrans
ClassGUID   = {4d36e975-e325-11ce-bfc1-08002be10318}
Provider    = %Msft%
DriverVer   = 07/01/2001,5.1.2600.2180

[Manufacturer]
%Msft% = MSFT

[MSFT]
%MS_TCPIP.DisplayName% = MS_TCPIP.PrimaryInstall, MS_TCPIP

[MS_TCPIP.PrimaryInstall]
Characteristics = 0xA0
AddReg          = Registry.MS_TCPIP.PrimaryInstall

[MS_TCPIP.PrimaryInstall.Services]
AddService = Tcpip, , Install.AddService.TCPIP

[Install.AddService.TCPIP]
DisplayName    = %MS_TCPIP.DisplayName%
ServiceType    = 1
StartType      = 1
ErrorControl   = 1
ServiceBinary  = %12%\tcpip.sys
LoadOrderGroup = PNP_TDI

[Registry.MS_TCPIP.PrimaryInstall]
HKR, Ndi, Service, 0, "Tcpip"

[Strings]
Msft                 = "Microsoft"
MS_TCPIP.DisplayName = "Internet Protocol (TCP/IP)"
`)

// NICINF is shaped like Intel's PRO/1000 package: service E1000 with
// image e1000325.sys (text mode must load it as E1000.sys), a
// co-installer DLL in a subdirectory, two model lines, a catalog.
const NICINF = `[Version]
Signature   = "$Windows NT$"
Class       = Net
ClassGUID   = {4d36e972-e325-11ce-bfc1-08002be10318}
Provider    = %Intel%
CatalogFile = e1000325.cat
DriverVer   = 06/14/2006,8.10.3.0

[Manufacturer]
%Intel% = Intel, NTx86.5.1

[Intel.NTx86.5.1]
%E100E.Desc% = E100E.ndi, PCI\VEN_8086&DEV_100E, PCI\VEN_8086&DEV_100E&SUBSYS_001E8086
%E100F.Desc% = E100E.ndi, PCI\VEN_8086&DEV_100F

[E100E.ndi.NTx86]
Characteristics = 0x84
BusType         = 5
AddReg          = e1000.reg
CopyFiles       = e1000.CopyFiles, CoInst.CopyFiles

[E100E.ndi.NTx86.Services]
AddService = E1000, 2, e1000.Service

[e1000.Service]
DisplayName    = %E1000.Service%
ServiceType    = 1
StartType      = 3
ErrorControl   = 1
ServiceBinary  = %12%\e1000325.sys
LoadOrderGroup = NDIS

[e1000.reg]
HKR, Ndi, Service, 0, "E1000"

[e1000.CopyFiles]
e1000325.sys,,,2

[CoInst.CopyFiles]
NicCo.dll

[DestinationDirs]
DefaultDestDir   = 12
CoInst.CopyFiles = 11

[SourceDisksNames]
1 = %Disk%,,,\x86

[SourceDisksFiles]
e1000325.sys = 1
NicCo.dll    = 1,coinst

[Strings]
Intel         = "Intel"
E100E.Desc    = "Intel(R) PRO/1000 MT Network Connection"
E100F.Desc    = "Intel(R) PRO/1000 MT Dual Port Network Connection"
E1000.Service = "Intel(R) PRO/1000 Adapter Driver"
Disk          = "Intel PRO/1000 Driver Disk"
`

// RootINF is shaped like sanbootconf: a root-enumerated System device,
// service group Base, a name longer than 8.3.
const RootINF = `[Version]
Signature = "$Windows NT$"
Class     = System
ClassGUID = {4d36e97d-e325-11ce-bfc1-08002be10318}
Provider  = %Prov%
DriverVer = 05/01/2014,1.2.0.0

[Manufacturer]
%Prov% = Prov

[Prov]
%Desc% = Sbc.Install, ROOT\sanbootconf

[Sbc.Install]
CopyFiles = Sbc.Files

[Sbc.Install.Services]
AddService = sanbootconf, 2, Sbc.Service

[Sbc.Service]
ServiceType    = 1
StartType      = 0
ErrorControl   = 1
ServiceBinary  = %12%\sanbootconf.sys
LoadOrderGroup = Base
AddReg         = Sbc.Service.reg

[Sbc.Service.reg]
HKR,Parameters,BootText,0x00010003,1
HKR,Parameters\Targets,,0x00000010

[Sbc.Files]
sanbootconf.sys

[DestinationDirs]
DefaultDestDir = 12

[Strings]
Prov = "iPXE"
Desc = "SAN Boot Configuration Driver"
`

// SCSIINF is a storage miniport: text mode loads it through SCSI.Load.
const SCSIINF = `[Version]
Signature = "$Windows NT$"
Class     = SCSIAdapter
ClassGUID = {4D36E97B-E325-11CE-BFC1-08002BE10318}
Provider  = %Prov%
DriverVer = 01/01/2008,1.0.0.0

[Manufacturer]
%Prov% = Prov

[Prov]
%Desc% = vscsi_Inst, PCI\VEN_1000&DEV_0030

[vscsi_Inst]
CopyFiles = vscsi.Files

[vscsi_Inst.Services]
AddService = vscsi, 2, vscsi_Service

[vscsi_Service]
DisplayName    = %Desc%
ServiceType    = 1
StartType      = 0
ErrorControl   = 1
ServiceBinary  = %12%\vscsi.sys
LoadOrderGroup = SCSI miniport

[vscsi.Files]
vscsi.sys

[DestinationDirs]
DefaultDestDir = 12

[Strings]
Prov = "Example"
Desc = "Example Ultra320 SCSI Controller"
`

// TextModeOEM is the txtsetup.oem of a storage driver disk (F6 disk).
const TextModeOEM = `; Synthetic text-mode driver disk.
[Disks]
d1 = "Example VM SCSI Driver Disk",\disk1,\

[Defaults]
scsi = vmscsi

[scsi]
vmscsi = "Example VM SCSI Controller", vmscsi

[Files.scsi.vmscsi]
driver  = d1, vmscsi.sys, vmscsi
inf     = d1, vmscsi.inf
catalog = d1, vmscsi.cat

[HardwareIds.scsi.vmscsi]
id = "PCI\VEN_104B&DEV_1040", "vmscsi"

[Config.vmscsi]
value = "", Tag, REG_DWORD, 1
`

// TextModeINF is the PnP INF that comes with TextModeOEM.
const TextModeINF = `[Version]
Signature = "$Windows NT$"
Class     = SCSIAdapter
ClassGUID = {4D36E97B-E325-11CE-BFC1-08002BE10318}
Provider  = %Prov%
CatalogFile = vmscsi.cat
DriverVer = 01/01/2008,1.0.0.0

[Manufacturer]
%Prov% = Prov

[Prov]
%Desc% = vmscsi_Inst, PCI\VEN_104B&DEV_1040

[vmscsi_Inst]
CopyFiles = vmscsi.Files

[vmscsi_Inst.Services]
AddService = vmscsi, 2, vmscsi_Service

[vmscsi_Service]
ServiceType    = 1
StartType      = 0
ErrorControl   = 1
ServiceBinary  = %12%\vmscsi.sys
LoadOrderGroup = SCSI miniport

[vmscsi.Files]
vmscsi.sys

[DestinationDirs]
DefaultDestDir = 12

[Strings]
Prov = "Example"
Desc = "Example VM SCSI Controller"
`

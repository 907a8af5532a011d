; ntldr.asm - a stand-in NTLDR for the setup tests (not shipped).
;
; It does for BOOT.INI's default entry C:\$WIN_NT$.~BT\BOOTSECT.DAT what
; NTLDR does for an entry naming a file: load that 512-byte file to
; 0:7C00 and jump to it with DL = the boot drive. It does not parse
; BOOT.INI; the path is fixed. Entered from xpboot's FAT32 boot code at
; 2000:0000 with DL = drive and the volume's BPB at 0:7C00. Writes
; "STANDIN-NTLDR" to COM1 on entry, "BOOTSECT.DAT LOADED" before the jump,
; or an error message and halts. Disk reads use INT 13h AH=42h only.
;
; Assembled with -DFILE_LBA=n it does not look for the file: it loads disk
; sector n instead, where the NTFS tests put BOOTSECT.DAT's bytes as
; ntfs-3g's ntfscat reads them from the staged volume (finding a file by
; path on NTFS is NTLDR's work, not xpboot's; the boot sector it loads is).

bits 16
cpu 386
org 0

BPB             equ 0x7C00
DIRBUF          equ 0x8000
FATBUF          equ 0x8200

start:
        cli
        push cs
        pop ds
        xor ax, ax
        mov es, ax
        sti
        cld
        mov [drive], dl
        mov si, m_hello
        call puts
%ifdef FILE_LBA
        mov eax, FILE_LBA
%else
        ; FAT and data area from the BPB.
        movzx eax, word [es:BPB + 0x0E]         ; reserved sectors
        add eax, [es:BPB + 0x1C]                ; hidden sectors
        mov [fat_lba], eax
        movzx ecx, byte [es:BPB + 0x10]         ; FATs
        mov ebx, [es:BPB + 0x24]                ; sectors per FAT
        imul ebx, ecx
        add eax, ebx
        mov [data_lba], eax
        movzx eax, byte [es:BPB + 0x0D]
        mov [spc], eax

        mov eax, [es:BPB + 0x2C]                ; root cluster
        mov si, n_btdir
        call find
        mov si, n_bootsect
        call find
        call cluster_lba
%endif
        mov bx, DIRBUF
        call read_sector
        mov si, m_loaded
        call puts
        ; The file replaces the volume's boot sector at 0:7C00.
        push ds
        xor ax, ax
        mov ds, ax
        mov si, DIRBUF
        mov di, BPB
        mov cx, 512
        rep movsb
        pop ds
        mov dl, [drive]
        xor ax, ax
        mov ds, ax
        jmp 0:0x7C00

; find looks up the 11-byte 8.3 name at DS:SI in the directory whose first
; cluster is EAX and returns the entry's first cluster in EAX.
find:
        mov [name], si
.cluster:
        cmp eax, 2
        jb notfound
        cmp eax, 0x0FFFFFF7
        jae notfound
        mov [cur], eax
        call cluster_lba
        mov ecx, [spc]
.sector:
        mov bx, DIRBUF
        call read_sector
        mov di, DIRBUF
.entry:
        cmp byte [es:di], 0
        je notfound
        push di
        push cx
        mov si, [name]
        mov cx, 11
        repe cmpsb
        pop cx
        pop di
        jne .next
        test byte [es:di + 11], 0x08            ; volume label or long name
        jnz .next
        mov ax, [es:di + 0x14]
        shl eax, 16
        mov ax, [es:di + 0x1A]
        ret
.next:
        add di, 32
        cmp di, DIRBUF + 512
        jb .entry
        inc eax
        loop .sector
        ; Next cluster of the directory from the FAT.
        mov eax, [cur]
        shl eax, 2
        push eax
        shr eax, 9
        add eax, [fat_lba]
        mov bx, FATBUF
        call read_sector
        pop eax
        and eax, 511
        mov bx, ax
        mov eax, [es:FATBUF + bx]
        and eax, 0x0FFFFFFF
        jmp .cluster

notfound:
        mov si, m_missing
        call puts
        mov si, [name]
        call puts
halt:
        hlt
        jmp halt

; cluster_lba: EAX = first sector of cluster EAX.
cluster_lba:
        sub eax, 2
        imul eax, [spc]
        add eax, [data_lba]
        ret

; read_sector reads LBA EAX into ES:BX (ES = 0) through INT 13h AH=42h;
; registers are kept.
read_sector:
        pushad
        mov [dap_lba], eax
        mov [dap_off], bx
        mov word [dap_seg], 0
        mov si, dap
        mov dl, [drive]
        mov ah, 0x42
        int 0x13
        jc .err
        popad
        ret
.err:
        mov si, m_disk
        call puts
        jmp halt

puts:
        lodsb
        test al, al
        jz .done
        call putc
        jmp puts
.done:
        ret

putc:
        push dx
        push ax
        mov dx, 0x3FD
.wait:
        in al, dx
        test al, 0x20
        jz .wait
        pop ax
        mov dx, 0x3F8
        out dx, al
        pop dx
        ret

m_hello:        db "STANDIN-NTLDR", 13, 10, 0
m_loaded:       db "BOOTSECT.DAT LOADED", 13, 10, 0
m_missing:      db "NOT FOUND: ", 0
m_disk:         db "DISK ERROR", 13, 10, 0
n_btdir:        db "$WIN_NT$~BT", 0
n_bootsect:     db "BOOTSECTDAT", 0

align 4
dap:            db 16, 0
                dw 1
dap_off:        dw 0
dap_seg:        dw 0
dap_lba:        dd 0, 0
drive:          db 0
align 4
fat_lba:        dd 0
data_lba:       dd 0
spc:            dd 0
cur:            dd 0
name:           dw 0

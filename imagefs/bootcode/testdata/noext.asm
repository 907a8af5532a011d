; noext.asm - a test option ROM (not shipped) that turns SeaBIOS into a BIOS
; without INT 13h extensions, so the boot code's CHS path runs unchanged.
;
; Loaded with qemu -option-rom, its init hooks INT 13h: functions 41h..48h
; fail with CF set and AH = 01h (invalid function), as on a BIOS that
; predates the extensions; everything else goes to SeaBIOS. It counts the
; refused extension calls in the word at 0:04F2 and the AH=02h (CHS read)
; calls in the word at 0:04F0 (the BDA's inter-application area) so the test
; NTLDR can report them. The test fixes the checksum byte at the end.

bits 16
cpu 386
org 0

        db 0x55, 0xAA
        db 1                            ; size in 512-byte blocks
        jmp init                        ; far-called by the BIOS at offset 3

init:
        push ds
        push ax
        xor ax, ax
        mov ds, ax
        mov [0x4F0], ax
        mov [0x4F2], ax
        mov ax, [0x13 * 4]
        mov [cs:old], ax                ; the ROM is still writable shadow RAM
        mov ax, [0x13 * 4 + 2]
        mov [cs:old + 2], ax
        mov word [0x13 * 4], hook
        mov [0x13 * 4 + 2], cs
        pop ax
        pop ds
        retf

hook:
        cmp ah, 0x02
        je .chs
        cmp ah, 0x41
        jb .chain
        cmp ah, 0x48
        ja .chain
        push ds
        push word 0
        pop ds
        inc word [0x4F2]
        pop ds
        mov ah, 0x01
        sti
        stc
        retf 2                          ; return with CF set
.chs:
        push ds
        push word 0
        pop ds
        inc word [0x4F0]
        pop ds
.chain:
        jmp far [cs:old]

old:    dd 0

        times 511 - ($ - $$) db 0
        db 0                            ; checksum, set by the test

; vbr.asm - a stand-in volume boot record for the MBR tests (not shipped).
;
; The MBR loads it to 0:7C00. It reports on COM1 the state the MBR hands
; over and exits QEMU through isa-debug-exit (exit status 33):
;   VBR-TEST DL=xx SI=xxxx BP=xxxx DS=xxxx ENTRY=<16 bytes at DS:SI in hex>
;   MBR=<the 4 bytes at 0:0600, proving the relocated copy> END

bits 16
cpu 386
org 0x7C00

        cli                             ; see ntldr.asm: keep SeaBIOS off COM1
        mov [cs:saved], dl
        mov [cs:saved + 1], si
        mov [cs:saved + 3], bp
        mov [cs:saved + 5], ds
        push si
        push ds
        xor ax, ax
        mov ds, ax
        mov si, m_start
        call puts
        mov al, [saved]
        call hex8
        mov si, m_si
        call puts
        mov ax, [saved + 1]
        call hex16
        mov si, m_bp
        call puts
        mov ax, [saved + 3]
        call hex16
        mov si, m_ds
        call puts
        mov ax, [saved + 5]
        call hex16
        mov si, m_entry
        call puts
        pop es
        pop bx
        mov cx, 16
.entry: mov al, [es:bx]
        call hex8
        inc bx
        loop .entry
        mov si, m_mbr
        call puts
        mov bx, 0x0600
        mov cx, 4
.mbr:   mov al, [bx]
        call hex8
        inc bx
        loop .mbr
        mov si, m_end
        call puts
        mov al, 0x10
        out 0xF4, al
.halt:  hlt
        jmp short .halt

puts:   lodsb
        test al, al
        jz .ret
        call putc
        jmp short puts
.ret:   ret

putc:   push dx
        push ax
        mov dx, 0x3FD
.wait:  in al, dx
        test al, 0x20
        jz .wait
        pop ax
        mov dx, 0x3F8
        out dx, al
        pop dx
        ret

hex16:  push ax
        mov al, ah
        call hex8
        pop ax
hex8:   push ax
        shr al, 4
        call hex4
        pop ax
hex4:   push ax
        and al, 0x0F
        add al, '0'
        cmp al, '9'
        jbe .digit
        add al, 'A' - '0' - 10
.digit: call putc
        pop ax
        ret

saved:   times 7 db 0
m_start: db 13, 10, "VBR-TEST DL=", 0
m_si:    db " SI=", 0
m_bp:    db " BP=", 0
m_ds:    db " DS=", 0
m_entry: db " ENTRY=", 0
m_mbr:   db " MBR=", 0
m_end:   db " END", 13, 10, 0

        times 510 - ($ - $$) db 0
        dw 0xAA55

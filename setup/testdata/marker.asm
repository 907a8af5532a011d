; marker.asm - a stand-in setup loader for the setup tests (not shipped).
;
; xpboot's FAT32 boot code loads it to 2000:0000 and jumps to it with DL =
; the boot drive. It writes MARKER (a string given with -DMARKER='...')
; and " DL=xx" to COM1, then exits QEMU through isa-debug-exit (port
; 0xF4, exit status 33).

bits 16
cpu 386
org 0

        cli
        mov bp, dx
        push cs
        pop ds
        mov si, msg
        call puts
        mov si, m_dl
        call puts
        mov ax, bp
        call hex8
        mov si, m_nl
        call puts
        mov al, 0x10
        out 0xF4, al
.halt:
        hlt
        jmp .halt

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

hex8:
        push ax
        shr al, 4
        call nib
        pop ax
        and al, 0x0F
nib:
        add al, '0'
        cmp al, '9'
        jbe .p
        add al, 7
.p:
        jmp putc

msg:    db MARKER, 0
m_dl:   db " DL=", 0
m_nl:   db 13, 10, 0

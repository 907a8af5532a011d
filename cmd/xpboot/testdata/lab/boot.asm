; Boot sector of the many-clients test (cmd/xpboot/lab_test.go) and of
; bench/serve/lab.sh. Loaded by iPXE from an iSCSI disk, it:
;   1. reads EXTENTS runs of SECTORS sectors, the first at LBA FIRST and each
;      STRIDE sectors after the one before, through INT 13h extended read,
;      and folds every byte into a checksum (sum = rol(sum, 1) + byte), so
;      that it touches the whole disk, not one cached spot;
;   2. writes a per-boot token (RDTSC) over sector WLBA with INT 13h
;      extended write, which lands in the client's overlay, and reads it
;      back;
;   3. prints "SUM=xxxxxxxx TOKEN=yyyyyyyy OK" on COM1, or "MISMATCH" if the
;      sector read back is not its own token, or "INT13 ERROR".
; The parameters come from nasm -D (the test's generator computes the
; expected checksum from the same numbers).
bits 16
org 0x7c00

%ifndef EXTENTS
%define EXTENTS 32
%endif
%ifndef SECTORS
%define SECTORS 16
%endif
%ifndef FIRST
%define FIRST 1
%endif
%ifndef STRIDE
%define STRIDE 4096
%endif
%ifndef WLBA
%define WLBA 2048
%endif
%if SECTORS > 127
%error "SECTORS must stay below 128 (one 64 KiB segment, and the byte count must fit CX)"
%endif

BUF equ 0x1000 ; segment of the 64 KiB transfer buffer

start:
	cli
	xor ax, ax
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov sp, 0x7c00
	sti
	mov [drive], dl
	; COM1: 115200 8N1
	mov dx, 0x3f9
	xor al, al
	out dx, al
	mov dx, 0x3fb
	mov al, 0x80
	out dx, al
	mov dx, 0x3f8
	mov al, 1
	out dx, al
	mov dx, 0x3f9
	xor al, al
	out dx, al
	mov dx, 0x3fb
	mov al, 3
	out dx, al

	mov word [count], EXTENTS
.extent:
	mov word [dap+2], SECTORS
	mov eax, [lba]
	mov [dap+8], eax
	mov ah, 0x42
	call disk
	; fold the buffer into the checksum
	mov edx, [sum]
	push ds
	mov ax, BUF
	mov ds, ax
	xor si, si
	mov cx, SECTORS*512
	xor eax, eax
.byte:
	lodsb
	rol edx, 1
	add edx, eax
	loop .byte
	pop ds
	mov [sum], edx
	add dword [lba], STRIDE
	dec word [count]
	jnz .extent

	; the token: written over WLBA, then read back
	rdtsc
	xor eax, edx
	mov [token], eax
	call fill
	mov word [dap+2], 1
	mov dword [dap+8], WLBA
	mov ax, 0x4300
	call disk
	xor eax, eax
	call fill
	mov ah, 0x42
	call disk
	mov ebx, [token]
	push ds
	mov ax, BUF
	mov ds, ax
	xor si, si
	mov cx, 128
.cmp:
	lodsd
	cmp eax, ebx
	jne bad
	loop .cmp
	pop ds

	mov si, msg_sum
	call puts
	mov ebp, [sum]
	call hex
	mov si, msg_tok
	call puts
	mov ebp, [token]
	call hex
	mov si, msg_ok
	call puts
halt:
	cli
	hlt
	jmp halt
bad:
	pop ds
	mov si, msg_bad
	call puts
	jmp halt

; disk: INT 13h function AH (AL as given) on the DAP; stops with
; "INT13 ERROR" on carry.
disk:
	mov si, dap
	mov dl, [drive]
	int 0x13
	jc .fail
	ret
.fail:
	mov si, msg_err
	call puts
	jmp halt

; fill: the first sector of the buffer := 128 × EAX
fill:
	push es
	push ax
	mov ax, BUF
	mov es, ax
	pop ax
	xor di, di
	mov cx, 128
	rep stosd
	pop es
	ret

; hex: print EBP as 8 lower-case hex digits
hex:
	mov cx, 8
.digit:
	rol ebp, 4
	mov ax, bp
	and al, 0x0f
	add al, '0'
	cmp al, '9'
	jbe .out
	add al, 'a' - '9' - 1
.out:
	call putc
	loop .digit
	ret

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
	mov dx, 0x3fd
.wait:
	in al, dx
	test al, 0x20
	jz .wait
	pop ax
	mov dx, 0x3f8
	out dx, al
	pop dx
	ret

msg_sum: db "SUM=", 0
msg_tok: db " TOKEN=", 0
msg_ok: db " OK", 13, 10, 0
msg_bad: db "MISMATCH", 13, 10, 0
msg_err: db "INT13 ERROR", 13, 10, 0
drive: db 0
count: dw 0
align 4
sum: dd 0
token: dd 0
lba: dd FIRST
dap: db 16, 0
	dw 0
	dw 0, BUF
	dq 0
times 510 - ($ - $$) db 0
	dw 0xaa55

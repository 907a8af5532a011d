; Test boot sector for the iPXE sanboot test (iscsitarget/sanboot_test.go).
; Booted by iPXE from an iSCSI disk, it reads sectors 1..512 through INT 13h
; extended reads (16 sectors at a time), folds every byte into a checksum
; (sum = rol(sum, 1) + byte) and prints "SUM=xxxxxxxx" on COM1.
; Build: nasm -f bin -o bootsector.bin bootsector.asm
bits 16
org 0x7c00

start:
	cli
	xor ax, ax
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov sp, 0x7c00
	sti
	mov [drive], dl
	mov dx, 0x3f9		; COM1: no interrupts
	xor al, al
	out dx, al
	mov dx, 0x3fb		; DLAB on
	mov al, 0x80
	out dx, al
	mov dx, 0x3f8		; divisor 1: 115200 baud
	mov al, 1
	out dx, al
	mov dx, 0x3f9
	xor al, al
	out dx, al
	mov dx, 0x3fb		; 8N1
	mov al, 3
	out dx, al

	xor ebp, ebp		; checksum
	mov cx, 32		; 32 chunks of 16 sectors
.chunk:
	push cx
	mov si, dap
	mov ah, 0x42
	mov dl, [drive]
	int 0x13
	jc fail
	push ds
	mov ax, 0x1000
	mov ds, ax
	xor bx, bx
	mov cx, 8192
.byte:
	movzx eax, byte [bx]
	rol ebp, 1
	add ebp, eax
	inc bx
	loop .byte
	pop ds
	add dword [dap_lba], 16
	pop cx
	loop .chunk

	mov si, msg_sum
	call puts
	mov cx, 8
.hex:
	rol ebp, 4
	mov ax, bp
	and al, 0x0f
	add al, '0'
	cmp al, '9'
	jbe .digit
	add al, 'a' - '9' - 1
.digit:
	call putc
	loop .hex
	mov si, msg_end
	call puts
halt:
	cli
	hlt
	jmp halt

fail:
	mov si, msg_err
	call puts
	jmp halt

puts:				; print the NUL-terminated string at ds:si
	lodsb
	test al, al
	jz .done
	call putc
	jmp puts
.done:
	ret

putc:				; print al on COM1
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
msg_end: db 13, 10, 0
msg_err: db "INT13 ERROR", 13, 10, 0
drive:	db 0
align 4
dap:	db 16, 0
	dw 16			; sectors per read
	dw 0, 0x1000		; buffer 1000:0000
dap_lba: dq 1

times 510 - ($ - $$) db 0
	dw 0xaa55

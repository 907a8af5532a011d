; floppy.asm: xpboot's floppy boot loader for `xpboot sanboot media
; --format floppy`. Written for xpboot; no SYSLINUX or other loader code.
;
; It loads a Linux-boot-protocol kernel (Debian's ipxe.lkrn) and an initrd
; (the iPXE script) from a 1.44 MB FAT12 floppy and starts the kernel. The
; loader occupies the volume's reserved sectors 0..LDR_SECTORS-1: sector 0
; is the boot sector (the BPB at bytes 3..61 is written by the Go side), the
; following sectors hold the second stage. The Go side also patches the
; parameter block at the start of sector 1 with the first sector and byte
; length of both files, which it stores contiguously, so the loader needs
; no FAT driver; the sector list is the one the image was written with.
;
; Memory: boot sector at 0:7C00, stage 2 at 0:7E00, stack below 0:7C00,
; floppy reads go to a bounce buffer at 2000:0000 (one track at most, so a
; read never crosses a 64 KiB DMA boundary) and are copied to their place
; with INT 15h AH=87h: the kernel's boot sector and setup code to 1000:0000
; (real-mode code, heap and command line in that segment), its protected-
; mode part to 1 MiB, the initrd to 8 MiB. Then the boot header is filled in
; (boot protocol 2.02+: type_of_loader, CAN_USE_HEAP, heap_end_ptr,
; cmd_line_ptr to an empty command line, ramdisk_image and ramdisk_size)
; and the setup code is entered at 1020:0000 with DS=ES=FS=GS=SS=1000h.

	cpu	386
	bits	16
	org	0x7C00

LDR_SECTORS	equ	4		; reserved sectors the loader fills
SETUP_SEG	equ	0x1000		; kernel boot sector and setup code
BOUNCE_SEG	equ	0x2000		; floppy read buffer
KERNEL_HIGH	equ	0x100000	; protected-mode kernel (code32_start)
INITRD_ADDR	equ	0x800000	; initrd
HEAP_END	equ	0xDE00		; heap_end_ptr (offset in SETUP_SEG)
CMDLINE_OFF	equ	0xE000		; empty command line (offset in SETUP_SEG)

bpb_spt		equ	0x7C18		; BPB: sectors per track
bpb_heads	equ	0x7C1A		; BPB: heads

start:
	jmp	short stage1
	nop
	times	62-($-$$) db 0		; BPB and extended BPB (Go writes them)

stage1:
	cli
	xor	ax, ax
	mov	ds, ax
	mov	es, ax
	mov	ss, ax
	mov	sp, 0x7C00
	sti
	cld
	mov	[drive], dl
	mov	si, msg_hello
	call	print
	; Stage 2: sectors 2..LDR_SECTORS of track 0, head 0.
	mov	di, 5
.retry:
	mov	ax, 0x0200 + LDR_SECTORS - 1
	mov	bx, 0x7E00
	mov	cx, 0x0002
	xor	dh, dh
	mov	dl, [drive]
	int	0x13
	jnc	.loaded
	xor	ax, ax
	mov	dl, [drive]
	int	0x13
	dec	di
	jnz	.retry
	jmp	read_error
.loaded:
	cmp	dword [params], 'XPBL'
	jne	read_error
	jmp	stage2

; print writes the NUL-terminated string at DS:SI through INT 10h.
print:
	pusha
.next:
	lodsb
	test	al, al
	jz	.done
	mov	ah, 0x0E
	mov	bx, 0x0007
	int	0x10
	jmp	.next
.done:
	popa
	ret

read_error:
	mov	si, msg_read
fail:
	call	print
.halt:
	hlt
	jmp	.halt

drive		db	0
msg_hello	db	'xpboot: loading iPXE', 0
msg_read	db	13, 10, 'xpboot: floppy read error', 0

	times	510-($-$$) db 0
	dw	0xAA55

; ---- sector 1: parameters (patched by the Go side), then stage 2 ----
params:
	db	'XPBL'
kernel_lba	dd	0		; first sector of ipxe.krn
kernel_bytes	dd	0		; its length
initrd_lba	dd	0		; first sector of the script
initrd_bytes	dd	0		; its length

stage2:
	; The kernel's boot sector and first setup sector: setup_sects and
	; the boot header (0x1F1..0x3FF).
	mov	eax, [kernel_lba]
	mov	ecx, 2
	mov	edi, SETUP_SEG * 16
	call	load
	mov	ax, SETUP_SEG
	mov	fs, ax
	cmp	word [fs:0x1FE], 0xAA55
	jne	not_kernel
	cmp	dword [fs:0x202], 'HdrS'
	jne	not_kernel
	cmp	word [fs:0x206], 0x0202
	jb	not_kernel
	test	byte [fs:0x211], 1		; LOADED_HIGH: a bzImage
	jz	not_kernel
	movzx	ecx, byte [fs:0x1F1]		; setup_sects, 0 meaning 4
	test	cl, cl
	jnz	.have_setup
	mov	cl, 4
.have_setup:
	mov	[setup_sects], ecx
	; The rest of the setup code.
	mov	eax, [kernel_lba]
	add	eax, 2
	dec	ecx
	mov	edi, SETUP_SEG * 16 + 1024
	call	load
	; The protected-mode part: what follows the setup sectors.
	mov	ecx, [setup_sects]
	inc	ecx
	mov	eax, [kernel_lba]
	add	eax, ecx
	shl	ecx, 9
	mov	edx, [kernel_bytes]
	sub	edx, ecx
	jbe	not_kernel
	mov	ecx, edx
	add	ecx, 511
	shr	ecx, 9
	mov	edi, KERNEL_HIGH
	call	load
	; The initrd.
	mov	eax, [initrd_lba]
	mov	ecx, [initrd_bytes]
	add	ecx, 511
	shr	ecx, 9
	mov	edi, INITRD_ADDR
	call	load
	; The boot header (reloaded: the setup read replaced nothing of it,
	; but FS may have been changed by the BIOS calls).
	mov	ax, SETUP_SEG
	mov	fs, ax
	mov	byte [fs:0x210], 0xFF			; type_of_loader: undefined
	or	byte [fs:0x211], 0x80			; CAN_USE_HEAP
	mov	word [fs:0x224], HEAP_END
	mov	dword [fs:0x228], SETUP_SEG * 16 + CMDLINE_OFF
	mov	byte [fs:CMDLINE_OFF], 0
	mov	dword [fs:0x218], INITRD_ADDR
	mov	eax, [initrd_bytes]
	mov	dword [fs:0x21C], eax
	mov	si, msg_start
	call	print
	mov	dl, [drive]
	cli
	mov	ax, SETUP_SEG
	mov	ds, ax
	mov	es, ax
	mov	fs, ax
	mov	gs, ax
	mov	ss, ax
	mov	sp, CMDLINE_OFF
	jmp	SETUP_SEG + 0x20 : 0

not_kernel:
	mov	si, msg_kernel
	jmp	fail

; load reads ECX sectors from LBA EAX to physical address EDI, a track (or
; what is left of it) at a time through the bounce buffer.
load:
	pushad
.more:
	test	ecx, ecx
	jz	.done
	; CHS of EAX.
	push	ecx
	push	eax
	xor	edx, edx
	movzx	ebx, word [bpb_spt]
	div	ebx				; eax = track, edx = sector-1
	mov	[chs_sector], dl
	movzx	esi, dx				; sectors left on the track
	neg	esi
	add	esi, ebx
	xor	edx, edx
	movzx	ebx, word [bpb_heads]
	div	ebx				; eax = cylinder, edx = head
	mov	[chs_head], dl
	mov	[chs_cyl], ax
	pop	eax
	pop	ecx
	cmp	ecx, esi
	jae	.count
	mov	esi, ecx
.count:
	mov	[count], si
	mov	bp, 5
.retry:
	push	es
	push	eax
	push	ecx
	mov	bx, BOUNCE_SEG
	mov	es, bx
	xor	bx, bx
	mov	ah, 0x02
	mov	al, [count]
	mov	dx, [chs_cyl]
	mov	ch, dl
	mov	cl, dh
	shl	cl, 6
	or	cl, [chs_sector]
	inc	cl
	mov	dh, [chs_head]
	mov	dl, [drive]
	int	0x13
	pop	ecx
	pop	eax
	pop	es
	jnc	.copy
	push	eax
	xor	ax, ax
	mov	dl, [drive]
	int	0x13
	pop	eax
	dec	bp
	jnz	.retry
	jmp	read_error
.copy:
	; INT 15h AH=87h: copy count*512 bytes from the bounce buffer to EDI.
	mov	[gdt_dst + 2], di
	push	edi
	shr	edi, 16
	mov	[gdt_dst + 4], di
	mov	byte [gdt_dst + 5], 0x93
	xchg	di, dx
	mov	[gdt_dst + 7], dh
	pop	edi
	push	eax
	push	ecx
	push	es
	xor	ax, ax
	mov	es, ax
	mov	si, gdt
	movzx	ecx, word [count]
	shl	cx, 8				; words
	mov	ah, 0x87
	int	0x15
	pop	es
	pop	ecx
	pop	eax
	jc	read_error
	movzx	edx, word [count]
	add	eax, edx
	sub	ecx, edx
	shl	edx, 9
	add	edi, edx
	mov	si, msg_dot
	call	print
	jmp	.more
.done:
	popad
	ret

setup_sects	dd	0
count		dw	0
chs_cyl		dw	0
chs_head	db	0
chs_sector	db	0
msg_dot		db	'.', 0
msg_start	db	13, 10, 'xpboot: starting iPXE', 13, 10, 0
msg_kernel	db	13, 10, 'xpboot: ipxe.krn is not a bzImage', 0

	align	8
gdt:	times	16 db 0				; null, GDT itself (BIOS fills)
gdt_src:
	dw	0xFFFF
	db	(BOUNCE_SEG * 16) & 0xFF, ((BOUNCE_SEG * 16) >> 8) & 0xFF, (BOUNCE_SEG * 16) >> 16
	db	0x93, 0, 0
gdt_dst:
	dw	0xFFFF
	db	0, 0, 0
	db	0x93, 0, 0
	times	16 db 0				; BIOS code and stack segments

	times	LDR_SECTORS*512-($-$$) db 0

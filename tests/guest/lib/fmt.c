/*
 * fmt.c — a small printf engine (see fmt.h for what it supports).
 *
 * Unknown conversions are printed verbatim rather than guessed at, so a format
 * mistake shows up in the test output instead of consuming the wrong argument.
 */
#include <stdint.h>

#include "fmt.h"

struct spec {
	int left;		/* '-' */
	int zero;		/* '0' */
	int width;
	int prec;		/* -1: none */
};

struct out {
	fmt_emit_fn emit;
	void *ctx;
	int n;
};

static void put(struct out *o, char c)
{
	o->emit(c, o->ctx);
	o->n++;
}

static void pad(struct out *o, char c, int count)
{
	while (count-- > 0)
		put(o, c);
}

static void put_str(struct out *o, const struct spec *sp, const char *s)
{
	int len = 0;

	if (!s)
		s = "(null)";
	while (s[len] && (sp->prec < 0 || len < sp->prec))
		len++;
	if (!sp->left)
		pad(o, ' ', sp->width - len);
	for (int i = 0; i < len; i++)
		put(o, s[i]);
	if (sp->left)
		pad(o, ' ', sp->width - len);
}

static void put_num(struct out *o, const struct spec *sp, uint64_t v, int neg,
		    unsigned base, int upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int len = 0, total;

	do {
		tmp[len++] = digits[v % base];
		v /= base;
	} while (v);
	total = len + neg;
	if (!sp->left && !sp->zero)
		pad(o, ' ', sp->width - total);
	if (neg)
		put(o, '-');
	if (!sp->left && sp->zero)
		pad(o, '0', sp->width - total);
	while (len)
		put(o, tmp[--len]);
	if (sp->left)
		pad(o, ' ', sp->width - total);
}

/* Parses a decimal field or '*' at *pf; returns the value (negative if '*' gave one). */
static int parse_field(const char **pf, va_list *ap)
{
	const char *f = *pf;
	int v = 0;

	if (*f == '*') {
		*pf = f + 1;
		return va_arg(*ap, int);
	}
	while (*f >= '0' && *f <= '9')
		v = v * 10 + (*f++ - '0');
	*pf = f;
	return v;
}

/* Fetches an integer argument of the given length ('H' hh, 'h', 'l', 'L' ll, 'z'). */
static uint64_t get_uint(va_list *ap, char len)
{
	switch (len) {
	case 'H':
		return (unsigned char)va_arg(*ap, unsigned int);
	case 'h':
		return (unsigned short)va_arg(*ap, unsigned int);
	case 'l':
		return va_arg(*ap, unsigned long);
	case 'L':
		return va_arg(*ap, unsigned long long);
	case 'z':
		return va_arg(*ap, size_t);
	default:
		return va_arg(*ap, unsigned int);
	}
}

static int64_t get_int(va_list *ap, char len)
{
	switch (len) {
	case 'H':
		return (signed char)va_arg(*ap, int);
	case 'h':
		return (short)va_arg(*ap, int);
	case 'l':
		return va_arg(*ap, long);
	case 'L':
		return va_arg(*ap, long long);
	case 'z':
		return (int64_t)va_arg(*ap, size_t);
	default:
		return va_arg(*ap, int);
	}
}

int fmt_vformat(fmt_emit_fn emit, void *ctx, const char *fmt, va_list ap0)
{
	struct out o = { emit, ctx, 0 };
	va_list ap;

	/* A copy, so helpers can take it by pointer (va_list may be an array type). */
	va_copy(ap, ap0);
	while (*fmt) {
		const char *start = fmt;
		struct spec sp = { 0, 0, 0, -1 };
		char len = 0;

		if (*fmt != '%') {
			put(&o, *fmt++);
			continue;
		}
		fmt++;
		for (;; fmt++) {
			if (*fmt == '-')
				sp.left = 1;
			else if (*fmt == '0')
				sp.zero = 1;
			else
				break;
		}
		sp.width = parse_field(&fmt, &ap);
		if (sp.width < 0) {
			sp.left = 1;
			sp.width = -sp.width;
		}
		if (*fmt == '.') {
			fmt++;
			sp.prec = parse_field(&fmt, &ap);
		}
		if (*fmt == 'h') {
			len = *++fmt == 'h' ? (fmt++, 'H') : 'h';
		} else if (*fmt == 'l') {
			len = *++fmt == 'l' ? (fmt++, 'L') : 'l';
		} else if (*fmt == 'z') {
			len = 'z';
			fmt++;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v = get_int(&ap, len);

			put_num(&o, &sp, v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0,
				10, 0);
			break;
		}
		case 'u':
			put_num(&o, &sp, get_uint(&ap, len), 0, 10, 0);
			break;
		case 'x':
		case 'X':
			put_num(&o, &sp, get_uint(&ap, len), 0, 16, *fmt == 'X');
			break;
		case 'p':
			put(&o, '0');
			put(&o, 'x');
			put_num(&o, &sp, (uintptr_t)va_arg(ap, void *), 0, 16, 0);
			break;
		case 's':
			put_str(&o, &sp, va_arg(ap, const char *));
			break;
		case 'c': {
			char c[2] = { (char)va_arg(ap, int), 0 };

			sp.prec = 1;
			put_str(&o, &sp, c);
			break;
		}
		case '%':
			put(&o, '%');
			break;
		default:
			/* Unknown: print it as written and stop interpreting. */
			while (start < fmt)
				put(&o, *start++);
			if (!*fmt)
				goto out;
			put(&o, *fmt);
			break;
		}
		fmt++;
	}
out:
	va_end(ap);
	return o.n;
}

struct buf {
	char *p;
	size_t size;
	size_t used;
};

static void buf_emit(char c, void *ctx)
{
	struct buf *b = ctx;

	if (b->used + 1 < b->size)
		b->p[b->used] = c;
	b->used++;
}

int fmt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct buf b = { buf, size, 0 };
	int n = fmt_vformat(buf_emit, &b, fmt, ap);

	if (size)
		buf[b.used < size ? b.used : size - 1] = '\0';
	return n;
}

int fmt_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = fmt_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

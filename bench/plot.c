/*
 * plot.c - the --plot SVG: throughput in bytes/s (log scale) against
 * message size (log scale), one line per throughput row, with min..max
 * error bars.  gnuplot draws it when installed; otherwise, or with
 * --plot-builtin, a small SVG writer below does, so the option never
 * depends on an optional package.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/*
 * Every series gets its own colour and its own marker, so that rows stay
 * apart however many there are: the first colours come from a palette
 * chosen to be told apart, the rest are spread round the hue circle by
 * the golden angle at alternating lightness (no two are equal); markers
 * cycle through shapes, filled, then hollow, then hollow with a dot, so
 * the first NMARKERS (33) series have distinct markers too; gnuplot gets
 * its 15 point types, then letters (distinct up to 41 series).
 */
static const char *const palette[] = {
	"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
	"#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
};
#define NCOLORS (sizeof palette / sizeof palette[0])

static void series_colour(int i, char buf[8])
{
	if ((size_t)i < NCOLORS) {
		memcpy(buf, palette[i], 8);
		return;
	}
	int k = i - (int)NCOLORS;
	double h = fmod(20.0 + 137.50776 * k, 360.0) / 60.0;
	double l = k % 2 ? 0.32 : 0.48, sat = 0.75;
	double c = (1 - fabs(2 * l - 1)) * sat;
	double x = c * (1 - fabs(fmod(h, 2.0) - 1)), m = l - c / 2;
	double r = 0, g = 0, b = 0;
	switch ((int)h) {
	case 0: r = c, g = x; break;
	case 1: r = x, g = c; break;
	case 2: g = c, b = x; break;
	case 3: g = x, b = c; break;
	case 4: r = x, b = c; break;
	default: r = c, b = x; break;
	}
	snprintf(buf, 8, "#%02x%02x%02x", (int)lround((r + m) * 255),
		 (int)lround((g + m) * 255), (int)lround((b + m) * 255));
}

/* Marker shapes of the built-in writer, each drawn filled, hollow, or
 * hollow with a dot in its centre. */
enum marker {
	M_CIRCLE, M_SQUARE, M_TRIANGLE, M_TRIANGLE_DOWN, M_DIAMOND,
	M_PENTAGON, M_HEXAGON, M_HEPTAGON, M_OCTAGON, M_STAR, M_CROSS,
	NSHAPES,
};
enum fill { F_FILLED, F_HOLLOW, F_DOTTED, NFILLS };
#define NMARKERS (NSHAPES * NFILLS)

static enum marker marker_shape(int i)
{
	return (enum marker)(i % NSHAPES);
}

static enum fill marker_fill(int i)
{
	return (enum fill)((i / NSHAPES) % NFILLS);
}

/* gnuplot's marker for series @i: its point types 1..15, all different,
 * then a letter each. */
static void gp_marker(char *buf, size_t len, int i)
{
	if (i < 15)
		snprintf(buf, len, "%d", i + 1);
	else
		snprintf(buf, len, "'%c'", 'A' + (i - 15) % 26);
}

static void size_label(char *buf, size_t len, double s)
{
	size_t v = (size_t)s;
	if (v >= 1024 * 1024 && v % (1024 * 1024) == 0)
		snprintf(buf, len, "%zuM", v / (1024 * 1024));
	else if (v >= 1024 && v % 1024 == 0)
		snprintf(buf, len, "%zuK", v / 1024);
	else
		snprintf(buf, len, "%zu", v);
}

/* Distinct sizes of all series, ascending. */
static int all_sizes(const struct bench_plot_series *s, int ns, double *out,
		     int cap)
{
	int n = 0;
	for (int i = 0; i < ns; i++)
		for (int k = 0; k < s[i].npoints; k++) {
			double v = s[i].pts[k].size;
			int j = 0;
			while (j < n && out[j] < v)
				j++;
			if (j < n && out[j] == v)
				continue;
			if (n == cap)
				continue;
			memmove(out + j + 1, out + j,
				(size_t)(n - j) * sizeof *out);
			out[j] = v;
			n++;
		}
	return n;
}

/* A gnuplot single-quoted string: quotes are doubled, nothing else is
 * special. */
static void gp_str(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

static int plot_gnuplot(const char *gnuplot, const char *path,
			const struct bench_plot_series *s, int ns,
			const char *title)
{
	char data[] = "/tmp/mproc-bench-plot-XXXXXX";
	int fd = mkstemp(data);
	if (fd < 0)
		return -errno;
	FILE *df = fdopen(fd, "w");
	if (!df) {
		close(fd);
		unlink(data);
		return -errno;
	}
	for (int i = 0; i < ns; i++) {
		fprintf(df, "# %s\n", s[i].label);
		for (int k = 0; k < s[i].npoints; k++)
			fprintf(df, "%.0f %.6g %.6g %.6g\n", s[i].pts[k].size,
				s[i].pts[k].median, s[i].pts[k].min,
				s[i].pts[k].max);
		fputs("\n\n", df);
	}
	fclose(df);

	char cmd[4200];
	snprintf(cmd, sizeof cmd, "'%s'", gnuplot);
	if (strchr(gnuplot, '\'')) {
		unlink(data);
		return -EINVAL;
	}
	FILE *g = popen(cmd, "w");
	if (!g) {
		unlink(data);
		return -errno;
	}
	fputs("set terminal svg size 1000,620 dynamic font 'sans,12' "
	      "background rgb 'white'\n", g);
	fputs("set output ", g);
	gp_str(g, path);
	fputs("\nset title ", g);
	gp_str(g, title);
	fputs(" noenhanced\n"
	      "set logscale xy\n"
	      "set xlabel 'message size (bytes)'\n"
	      "set ylabel 'throughput (bytes/s)'\n"
	      "set format y '%.0s%cB/s'\n"
	      "set grid xtics ytics mytics\n"
	      "set key outside right top noenhanced\n"
	      "set offsets graph 0.05, graph 0.05, 0, 0\n", g);
	double sizes[64];
	int nsz = all_sizes(s, ns, sizes, 64);
	fputs("set xtics (", g);
	for (int i = 0; i < nsz; i++) {
		char l[24];
		size_label(l, sizeof l, sizes[i]);
		fprintf(g, "%s'%s' %.0f", i ? ", " : "", l, sizes[i]);
	}
	fputs(")\nplot ", g);
	for (int i = 0; i < ns; i++) {
		fputs(i ? ", " : "", g);
		gp_str(g, data);
		char col[8], pt[16];
		series_colour(i, col);
		gp_marker(pt, sizeof(pt), i);
		fprintf(g, " index %d using 1:2:3:4 with yerrorlines lw 2 "
			   "pt %s ps 0.9 lc rgb '%s' title ",
			i, pt, col);
		gp_str(g, s[i].label);
	}
	fputs("\n", g);
	int st = pclose(g);
	unlink(data);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -EIO;
	struct stat sb;
	if (stat(path, &sb) != 0 || sb.st_size < 200)
		return -EIO;
	return 0;
}

static void xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '&')
			fputs("&amp;", f);
		else if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else
			fputc(*s, f);
	}
}

static void bytes_label(char *buf, size_t len, double v)
{
	static const char *const si[] = {"", "k", "M", "G", "T", "P"};
	int k = 0;
	while (v >= 1000 && k < 5) {
		v /= 1000;
		k++;
	}
	snprintf(buf, len, "%.0f %sB/s", v, si[k]);
}

/* The shape of marker @i at (@x, @y), in the group's colour. */
static void svg_shape(FILE *f, int i, double x, double y)
{
	const double r = 4;
	const char *fill = marker_fill(i) == F_FILLED ? "" : " fill=\"white\"";
	switch (marker_shape(i)) {
	case M_CIRCLE:
		fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\"%s/>\n",
			x, y, r, fill);
		return;
	case M_SQUARE:
		fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			   "height=\"%.1f\"%s/>\n",
			x - r, y - r, 2 * r, 2 * r, fill);
		return;
	default:
		break;
	}
	/* Polygons: corners on a circle, the first at @start degrees; a
	 * star or a cross alternates an outer and an inner radius (@inner,
	 * a fraction of the outer one; 1 for a plain polygon). */
	static const struct { int n; double start, inner; } poly[NSHAPES] = {
		[M_TRIANGLE] = { 3, -90, 1 },
		[M_TRIANGLE_DOWN] = { 3, 90, 1 },
		[M_DIAMOND] = { 4, -90, 1 },
		[M_PENTAGON] = { 5, -90, 1 },
		[M_HEXAGON] = { 6, 0, 1 },
		[M_HEPTAGON] = { 7, -90, 1 },
		[M_OCTAGON] = { 8, 22.5, 1 },
		[M_STAR] = { 10, -90, 0.45 },
		[M_CROSS] = { 8, -90, 0.42 },
	};
	enum marker m = marker_shape(i);
	fputs("<polygon points=\"", f);
	for (int k = 0; k < poly[m].n; k++) {
		double a = (poly[m].start + 360.0 * k / poly[m].n) * M_PI / 180;
		double rr = 1.25 * r * (k % 2 ? poly[m].inner : 1);
		fprintf(f, "%s%.1f,%.1f", k ? " " : "", x + rr * cos(a),
			y + rr * sin(a));
	}
	fprintf(f, "\"%s/>\n", fill);
}

/* Marker @i of the series at (@x, @y): its shape, and for the third set
 * a dot in the middle (drawn last, over the white fill). */
static void svg_marker(FILE *f, int i, double x, double y)
{
	svg_shape(f, i, x, y);
	if (marker_fill(i) == F_DOTTED)
		fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"1.3\" "
			   "stroke=\"none\"/>\n", x, y);
}

static int plot_builtin(const char *path, const struct bench_plot_series *s,
			int ns, const char *title)
{
	const double W = 1000, H = 620, L = 90, R = 230, T = 50, B = 60;
	double pw = W - L - R, ph = H - T - B;
	double sizes[64];
	int nsz = all_sizes(s, ns, sizes, 64);
	double ymin = INFINITY, ymax = 0;
	for (int i = 0; i < ns; i++)
		for (int k = 0; k < s[i].npoints; k++) {
			const struct bench_plot_point *p = &s[i].pts[k];
			double lo = p->min > 0 ? p->min : p->median;
			if (lo > 0 && lo < ymin)
				ymin = lo;
			if (p->max > ymax)
				ymax = p->max;
			if (p->median > ymax)
				ymax = p->median;
		}
	if (nsz == 0 || !(ymin > 0) || !(ymax > 0))
		return -EINVAL;
	double y0 = floor(log10(ymin)), y1 = ceil(log10(ymax));
	if (y1 <= y0)
		y1 = y0 + 1;
	double x0 = log10(sizes[0]) - 0.3, x1 = log10(sizes[nsz - 1]) + 0.3;

#define XPOS(v) (L + (log10(v) - x0) / (x1 - x0) * pw)
#define YPOS(v) (T + ph - (log10(v) - y0) / (y1 - y0) * ph)

	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
		   "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
		   "font-family=\"sans-serif\" font-size=\"12\">\n"
		   "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
		W, H, W, H);
	fprintf(f, "<text x=\"%.0f\" y=\"28\" text-anchor=\"middle\" "
		   "font-size=\"15\">", L + pw / 2);
	xml_text(f, title);
	fputs("</text>\n", f);

	/* Grid and y labels: one line per decade. */
	for (double d = y0; d <= y1 + 1e-9; d += 1) {
		double y = YPOS(pow(10, d));
		char l[32];
		bytes_label(l, sizeof l, pow(10, d));
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
			   "y2=\"%.1f\" stroke=\"#ddd\"/>\n",
			L, y, L + pw, y);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">"
			   "%s</text>\n", L - 6, y + 4, l);
	}
	for (int i = 0; i < nsz; i++) {
		double x = XPOS(sizes[i]);
		char l[24];
		size_label(l, sizeof l, sizes[i]);
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
			   "y2=\"%.1f\" stroke=\"#ddd\"/>\n",
			x, T, x, T + ph);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
			   "%s</text>\n", x, T + ph + 18, l);
	}
	fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" "
		   "fill=\"none\" stroke=\"black\"/>\n", L, T, pw, ph);
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">"
		   "message size (bytes)</text>\n", L + pw / 2, H - 15);
	fprintf(f, "<text transform=\"translate(18,%.0f) rotate(-90)\" "
		   "text-anchor=\"middle\">throughput (bytes/s)</text>\n",
		T + ph / 2);

	for (int i = 0; i < ns; i++) {
		char col[8];
		series_colour(i, col);
		fprintf(f, "<g stroke=\"%s\" fill=\"%s\">\n", col, col);
		if (s[i].npoints > 1) {
			fputs("<polyline fill=\"none\" stroke-width=\"2\" "
			      "points=\"", f);
			for (int k = 0; k < s[i].npoints; k++)
				fprintf(f, "%s%.1f,%.1f", k ? " " : "",
					XPOS(s[i].pts[k].size),
					YPOS(s[i].pts[k].median));
			fputs("\"/>\n", f);
		}
		for (int k = 0; k < s[i].npoints; k++) {
			const struct bench_plot_point *p = &s[i].pts[k];
			double x = XPOS(p->size);
			if (p->min > 0 && p->max > 0)
				fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" "
					   "x2=\"%.1f\" y2=\"%.1f\"/>\n",
					x, YPOS(p->min), x, YPOS(p->max));
			svg_marker(f, i, x, YPOS(p->median));
		}
		double ly = T + 10 + 18 * i;
		fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" "
			   "stroke-width=\"2\"/>\n",
			L + pw + 15, ly, L + pw + 40, ly);
		svg_marker(f, i, L + pw + 27.5, ly);
		fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" stroke=\"none\" "
			   "fill=\"black\">", L + pw + 46, ly + 4);
		xml_text(f, s[i].label);
		fputs("</text>\n</g>\n", f);
	}
	fputs("</svg>\n", f);
#undef XPOS
#undef YPOS
	return fclose(f) == 0 ? 0 : -errno;
}

int bench__plot(const char *path, const struct bench_plot_series *series,
		int nseries, const char *title, bool builtin)
{
	char gp[4096];
	if (!builtin && bench__find_in_path("gnuplot", gp, sizeof gp)) {
		int rc = plot_gnuplot(gp, path, series, nseries, title);
		if (rc == 0)
			return 0;
		fprintf(stderr, "mproc-bench: gnuplot failed (%s); using the "
				"built-in SVG writer\n", strerror(-rc));
	}
	int rc = plot_builtin(path, series, nseries, title);
	if (rc < 0)
		fprintf(stderr, "mproc-bench: %s: %s\n", path, strerror(-rc));
	return rc;
}

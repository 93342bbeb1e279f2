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

static const char *const palette[] = {
	"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
	"#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
};
#define NCOLORS (sizeof palette / sizeof palette[0])

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
		fprintf(g, " index %d using 1:2:3:4 with yerrorlines lw 2 "
			   "pt 7 ps 0.6 lc rgb '%s' title ",
			i, palette[i % NCOLORS]);
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
		const char *col = palette[(size_t)i % NCOLORS];
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
			fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\"/>\n",
				x, YPOS(p->median));
		}
		double ly = T + 10 + 18 * i;
		fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" "
			   "stroke-width=\"2\"/>\n",
			L + pw + 15, ly, L + pw + 40, ly);
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

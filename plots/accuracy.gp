# Validation accuracy per epoch, one curve per run; with no validation set (--val 0),
# each run's test accuracy at its last epoch instead, and the title says so.
# bench --sweep sets: sweep, summary, labels, nruns, outdir, val, note.
set datafile separator ","
set datafile commentschars "#"
set datafile columnheaders
set datafile missing "nan"
L = system("cat '".labels."'")
if (!exists("note")) note = ""
set terminal pngcairo size 1400,900 enhanced font "DejaVu Sans,13" linewidth 1.5
set output outdir."/accuracy.png"
if (!exists("val")) val = 1
have_val = val > 0
stats sweep using (column("epoch")) nooutput
if (STATS_max == STATS_min || !have_val) set xrange [0.5:STATS_max + 0.5]
what = have_val ? "validation accuracy per epoch" : "test accuracy after the last epoch (no validation set: --val 0)"
set title "scratchnet: ".what.(note eq "" ? "" : "\n".note) noenhanced
set xlabel "epoch"
set ylabel have_val ? "validation accuracy" : "test accuracy"
set format y "%.3f"
set offsets 0, 0, graph 0.05, graph 0.05
set grid lc rgb "#dddddd"
set key outside right top box opaque noenhanced
set xtics 1
if (have_val) {
    plot for [r=1:nruns] sweep using (column("run") == r && column("rep") <= 1 ? column("epoch") : 1/0):(column("val_acc")) \
            with linespoints lc ((r - 1) % 8 + 1) dt 1 + (r - 1) / 8 * 2 lw 2 pt ((r - 1) / 8 * 2 + 7) ps 0.9 \
            title word(L, r)
} else {
    plot for [r=1:nruns] summary using (column("run") == r ? column("epochs") : 1/0):(column("test_acc")) \
            with points lc ((r - 1) % 8 + 1) pt ((r - 1) / 8 * 2 + 7) ps 1.5 title word(L, r)
}

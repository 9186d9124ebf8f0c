# Train (solid) and validation (dashed) loss per epoch, one colour per run.
# bench --sweep sets: sweep, summary (CSV paths), labels (legend file), nruns, outdir,
# val (the validation images: 0, none), note (a line under the title, may be empty).
set datafile separator ","
set datafile commentschars "#"
set datafile columnheaders
set datafile missing "nan"
L = system("cat '".labels."'")
if (!exists("note")) note = ""
if (!exists("val")) val = 1
set terminal pngcairo size 1400,900 enhanced font "DejaVu Sans,13" linewidth 1.5
set output outdir."/loss.png"
set title "scratchnet: cross-entropy loss per epoch".(val > 0 ? "  (solid: train, dashed: validation)" : "  (training; no validation set: --val 0)").(note eq "" ? "" : "\n".note) noenhanced
set xlabel "epoch"
set ylabel "loss (mean cross-entropy)"
set logscale y
set grid xtics ytics mytics lc rgb "#dddddd"
set key outside right top box opaque spacing 1.2 noenhanced
set xtics 1
# One epoch: a range around it, not gnuplot's "empty x range".
stats sweep using (column("epoch")) nooutput
if (STATS_max == STATS_min) set xrange [STATS_min - 0.5:STATS_max + 0.5]
# Eight colours, then the next eight dashed, with other point shapes: runs stay apart.
if (val > 0) {
    plot for [r=1:nruns] sweep using (column("run") == r && column("rep") <= 1 ? column("epoch") : 1/0):(column("train_loss")) \
            with linespoints lc ((r - 1) % 8 + 1) dt 1 + (r - 1) / 8 * 2 lw 2 pt ((r - 1) / 8 * 2 + 7) ps 0.9 \
            title word(L, r)." train", \
         for [r=1:nruns] sweep using (column("run") == r && column("rep") <= 1 ? column("epoch") : 1/0):(column("val_loss")) \
            with linespoints lc ((r - 1) % 8 + 1) dt 2 + (r - 1) / 8 * 2 lw 2 pt ((r - 1) / 8 * 2 + 6) ps 0.9 \
            title word(L, r)." val"
} else {
    plot for [r=1:nruns] sweep using (column("run") == r && column("rep") <= 1 ? column("epoch") : 1/0):(column("train_loss")) \
            with linespoints lc ((r - 1) % 8 + 1) dt 1 + (r - 1) / 8 * 2 lw 2 pt ((r - 1) / 8 * 2 + 7) ps 0.9 \
            title word(L, r)." train"
}

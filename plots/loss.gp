# Train (solid) and validation (dashed) loss per epoch, one colour per run.
# bench --sweep sets: sweep, summary (CSV paths), labels (legend file), nruns, outdir.
set datafile separator ","
set datafile commentschars "#"
set datafile columnheaders
set datafile missing "nan"
L = system("cat '".labels."'")
set terminal pngcairo size 1400,900 enhanced font "DejaVu Sans,13" linewidth 1.5
set output outdir."/loss.png"
set title "scratchnet: cross-entropy loss per epoch  (solid: train, dashed: validation)"
set xlabel "epoch"
set ylabel "loss (mean cross-entropy)"
set logscale y
set grid xtics ytics mytics lc rgb "#dddddd"
set key outside right top box opaque spacing 1.2
set xtics 1
plot for [r=1:nruns] sweep using (column("run") == r ? column("epoch") : 1/0):(column("train_loss")) \
        with linespoints lc r lw 2 pt 7 ps 0.7 title word(L, r)." train", \
     for [r=1:nruns] sweep using (column("run") == r ? column("epoch") : 1/0):(column("val_loss")) \
        with linespoints lc r lw 2 dt 2 pt 6 ps 0.7 title word(L, r)." val"

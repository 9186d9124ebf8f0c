# Validation accuracy per epoch, one curve per run.
# bench --sweep sets: sweep, summary, labels, nruns, outdir.
set datafile separator ","
set datafile commentschars "#"
set datafile columnheaders
set datafile missing "nan"
L = system("cat '".labels."'")
set terminal pngcairo size 1400,900 enhanced font "DejaVu Sans,13" linewidth 1.5
set output outdir."/accuracy.png"
set title "scratchnet: validation accuracy per epoch"
set xlabel "epoch"
set ylabel "validation accuracy"
set format y "%.3f"
set grid lc rgb "#dddddd"
set key outside right top box opaque
set xtics 1
plot for [r=1:nruns] sweep using (column("run") == r ? column("epoch") : 1/0):(column("val_acc")) \
        with linespoints lc r lw 2 pt 7 ps 0.7 title word(L, r)

# Time to accuracy per run (training seconds until the first validation accuracy at or
# above --target-acc), from summary.csv; runs that never reached it have no bar.
# bench --sweep --target-acc A sets: sweep, summary, labels, nruns, outdir.
set datafile separator ","
set datafile commentschars "#"
set datafile columnheaders
set datafile missing "nan"
L = system("cat '".labels."'")
set terminal pngcairo size 1400,900 enhanced font "DejaVu Sans,13"
set output outdir."/tta.png"
set title "scratchnet: time to the target validation accuracy per run (no bar: not reached)"
set ylabel "training seconds"
set grid ytics lc rgb "#dddddd"
set style fill solid 0.7 border -1
set boxwidth 0.6
set xtics rotate by -25 left noenhanced
unset key
set xrange [0.3:nruns + 0.7]
set yrange [0:*]
# An empty tta_s (not reached) is a missing value: no bar.
plot summary using (column("run")):(strcol("tta_s") eq "" ? 1/0 : column("tta_s")):(column("run")):xtic(word(L, int(column("run")))) \
        with boxes lc variable

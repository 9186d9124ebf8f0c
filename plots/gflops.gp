# GFLOP/s per GEMM case and implementation, from `bench --gemm --csv gemm.csv`.
# Usage: gnuplot -e "csv='gemm.csv'; out='gflops.png'; threads=1" plots/gflops.gp
set datafile separator ","
set datafile commentschars "#"
set datafile columnheaders
if (!exists("threads")) threads = 1
set terminal pngcairo size 1600,900 enhanced font "DejaVu Sans,12"
set output out
set title sprintf("GEMM throughput on the MLP's shapes, %d thread(s)  (higher is better)", threads)
set ylabel "GFLOP/s"
set yrange [0:*]
set grid ytics lc rgb "#dddddd"
set style fill solid 0.8 border -1
set boxwidth 0.15
set key outside right top
set xtics 1
set xlabel "case (the case column of the CSV: op m x n x k)"
isas = "avx512 avx2 scalar openblas blis"
plot for [i=1:words(isas)] csv using \
        ((strcol("isa") eq word(isas, i) && column("threads") == threads) ? column("case") + (i - 3) * 0.16 : 1/0):(column("gflops")) \
        with boxes lc i title word(isas, i)

# Accuracy on synthesised drawn digits (scratchnet drawn --csv), by pen width, slant and
# size, for one or more models side by side:
#   gnuplot -e "files='before.csv after.csv'; titles='before after'; out='drawn.png'" plots/drawn.gp
# titles are single words ('_' shows as a space). Each CSV: group,bin,lo,hi,n,acc; row 1 is
# all the digits, then one row per bin, in the same order in every file.
set datafile separator ","
set datafile columnheaders
if (!exists("out")) out = "drawn.png"
if (!exists("titles")) titles = files
n = words(files)
set terminal pngcairo size 1400,800 enhanced font "DejaVu Sans,13"
set output out
set title "scratchnet: accuracy on drawn digits (MNIST test digits re-inked along their skeletons)"
set ylabel "accuracy"
set yrange [0.5:1]
set grid ytics lc rgb "#dddddd"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key below
set xtics rotate by -25 left noenhanced
plot for [i=1:n] word(files, i) using "acc":xtic((strcol("group") eq "all" ? "all digits" : strcol("group")." ".strcol("bin"))." (".strcol("n").")") \
        title system("printf '%s' '".word(titles, i)."' | tr _ ' '") noenhanced

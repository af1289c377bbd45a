# A long-tail ratings catalog with another schema (genres and tags as
# multi-valued text, a year, ratings 4-5 as weight, no images): the shape of
# the public data issue 20 describes, generated with a planted taste model.
#
# usage: python3 scripts/gen-longtail.py OUT_DIR   (writes items.csv, ratings.csv)
# Then: vitrine split --interactions OUT_DIR/ratings.csv --train T --test E,
# vitrine build --items OUT_DIR/items.csv --interactions T --out B, and
# vitrine evaluate --bundle B --test E (docs/ranker.md, docs/tuning.md).
import random, math, csv, os, sys
out = sys.argv[1] if len(sys.argv) > 1 else '.'
os.makedirs(out, exist_ok=True)
random.seed(11)
G=['Action','Adventure','Animation','Children','Comedy','Crime','Documentary','Drama','Fantasy','Horror','Musical','Mystery','Romance','Sci-Fi','Thriller','War','Western']
T=['classic','twist ending','dark','funny','based on a book','visually appealing','slow','cult','quirky','atmospheric','remake','true story','space','dystopia','heist','time travel']
NI,NU=9000,610
items=[]
for i in range(NI):
    g=random.sample(G,random.choice([1,1,2,2,3]))
    t=random.sample(T,random.choice([0,0,1,2,3]))
    year=random.randint(1950,2018)
    items.append((f"m{i}",f"Title {i} ({year})",year,g,t))
pop=[1/(r+1)**1.1 for r in range(NI)]; random.shuffle(pop)
with open(out + '/items.csv','w',newline='') as f:
    w=csv.writer(f); w.writerow(['item_id','title','year','genres','tags'])
    for it in items: w.writerow([it[0],it[1],it[2],'|'.join(it[3]),'|'.join(it[4])])
gi={g:[i for i,it in enumerate(items) if g in it[3]] for g in G}
rows=[]
t0=1500000000
for u in range(NU):
    likes=random.sample(G,3); era=random.randint(1960,2015)
    n=max(5,int(random.paretovariate(1.2)*12)); n=min(n,600)
    seen=set(); t=t0+random.randint(0,3*10**7)
    # drift: the user's first genre fades, a new one rises over time
    later=random.choice(G)
    for k in range(n):
        frac=k/n
        g=random.choice(likes if random.random()>frac*0.5 else [later])
        cand=random.sample(gi[g],min(60,len(gi[g])))
        wts=[pop[c]*math.exp(-abs(items[c][2]-era)/15) for c in cand]
        c=random.choices(cand,weights=wts)[0]
        if c in seen: continue
        seen.add(c); t+=random.randint(60,86400*3)
        rows.append((f"u{u}",items[c][0],random.choice([4,4.5,5]),t))
with open(out + '/ratings.csv','w',newline='') as f:
    w=csv.writer(f); w.writerow(['user_id','item_id','weight','timestamp'])
    for r in rows: w.writerow(r)
from collections import Counter
c=Counter(r[1] for r in rows); print(len(rows),'ratings', len(c),'items rated', sum(1 for v in c.values() if v<5)/NI,'share of catalog with <5')

"""Medians of the A/B runs of session 6 (run from this folder): Mops/s per binary and
ratio to dashmap measured in the same run, then max latency and sharded / scc HashMap."""
import json,glob,statistics as st,collections
def rows(f):
    return json.load(open(f))['rows']
groups={'e73fc7c':[], '6a649a4':[], 'f7628bb':[]}
groups['e73fc7c'] += sorted(glob.glob('run1-e73fc7c/ab/r*-B/results.json'))+sorted(glob.glob('run2-lockfree-6a649a4/ab/r*-A/results.json'))+sorted(glob.glob('run3-maintenance-f7628bb/ab/r*-A/results.json'))
groups['6a649a4'] += sorted(glob.glob('run2-lockfree-6a649a4/ab/r*-B/results.json'))+sorted(glob.glob('run3-maintenance-f7628bb/ab/r*-B/results.json'))
groups['f7628bb'] += sorted(glob.glob('run3-maintenance-f7628bb/ab/r*-C/results.json'))
wl=['churn10','ttl-cache','insert-after-promote','read100','read99']
res={}
for g,files in groups.items():
    mops=collections.defaultdict(list); ratio=collections.defaultdict(list); mx=collections.defaultdict(list)
    for f in files:
        R=rows(f)
        by={(r['map'],r['workload']):r for r in R}
        for (m,w),r in by.items():
            mops[(m,w)].append(r['mops']); mx[(m,w)].append(r['max_ns'])
            ratio[(m,w,'dash')].append(r['mops']/by[('dashmap',w)]['mops'])
            ratio[(m,w,'scc')].append(r['mops']/by[('scc-hashmap',w)]['mops'])
    res[g]=(mops,ratio,mx,len(files))
print("| workload | map | e73fc7c Mops/s | 6a649a4 Mops/s | f7628bb Mops/s | ÷ dashmap e73fc7c | ÷ dashmap 6a649a4 | ÷ dashmap f7628bb |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for w in wl:
    for m in ['syncmap','sharded','dashmap','scc-hashmap']:
        cells=[]
        for g in groups:
            mops,_,_,n=res[g]; v=mops[(m,w)]
            cells.append("%.1f (%.1f–%.1f)"%(st.median(v),min(v),max(v)))
        rc=[]
        for g in groups:
            _,ratio,_,_=res[g]; v=ratio[(m,w,'dash')]
            rc.append("%.2f"%st.median(v))
        print("| %s | %s | %s | %s |"%(w,m,' | '.join(cells),' | '.join(rc)))
print()
for g in groups: print(g, res[g][3], 'runs')
print("max latency (ms), median over runs / worst:")
for w in ['churn10','ttl-cache','insert-after-promote']:
    for g in groups:
        v=res[g][2][('syncmap',w)]
        print(w,g,"%.1f / %.1f"%(st.median(v)/1e6,max(v)/1e6))
print("sharded vs scc churn10:")
for g in groups:
    print(g, "%.2f"%st.median(res[g][1][('sharded','churn10','scc')]))

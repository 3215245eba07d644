import json,re,sys,collections
def load(fn):
    d=json.load(open(fn)); ft=d['ftbl']; agg=collections.Counter(); area=collections.Counter()
    for p in d['pps']:
        fr=[re.sub(r'^0x[0-9A-F]+: ','',ft[i]) for i in p['fs']]
        own=[f for f in fr if re.search(r'dmarc_proto::|proto/src/',f) and 'alloc::' not in f.split(' (')[0][:12]]
        # first frame naming our code
        key=own[0][:150] if own else (fr[3][:150] if len(fr)>3 else '?')
        agg[key]+=p['tbk']
        a='?'
        for f in own:
            m=re.search(r'dmarc_proto::(\w+)',f)
            if m: a=m.group(1); break
        area[a]+=p['tbk']
    return agg,area
a1,r1=load(sys.argv[1]); a4,r4=load(sys.argv[2]); n=float(sys.argv[3])
print({k:round((r4[k]-r1[k])/n,1) for k in r4 if (r4[k]-r1[k])/n>=0.5})
for k in sorted(a4,key=lambda k:-(a4[k]-a1[k]))[:70]:
    v=(a4[k]-a1[k])/n
    if v>=0.9: print("%6.2f %s"%(v,k))

import subprocess,re,sys
def load(f):
    out=subprocess.run(['callgrind_annotate','--inclusive=yes','--threshold=100',f],capture_output=True,text=True).stdout
    d={}
    for line in out.splitlines():
        m=re.match(r'\s*([\d,]+)\s+(?:\([ \d.%]+\)\s+)?(\S.*)$',line)
        if m and ':' in m.group(2):
            d[m.group(2)]=int(m.group(1).replace(',',''))
    return d
a=load(sys.argv[1]); b=load(sys.argv[2]); n=float(sys.argv[3])
rows=[(b[k]-a.get(k,0))/n for k in b]
for k in sorted(b,key=lambda k:-(b[k]-a.get(k,0)))[:int(sys.argv[4]) if len(sys.argv)>4 else 80]:
    print("%9.0f %s"%((b[k]-a.get(k,0))/n, k[:200]))

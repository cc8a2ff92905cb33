import csv, json, numpy as np, glob, subprocess, sys
from PIL import Image
def contrast(img, box):
    x0,y0,x1,y1=box; cx,cy=(x0+x1)/2,(y0+y1)/2; r=max((x1-x0),(y1-y0))/2
    H,W=img.shape; yy,xx=np.mgrid[0:H,0:W]; d=np.hypot(xx-cx,yy-cy)
    return (img[d<=0.5*r].mean()-img[(d>=1.3*r)&(d<=2.0*r)].mean())/(img.std()+1e-6)
out=[]
for f in sorted(glob.glob(sys.argv[1]+'/labels/*.json')):
    d=json.load(open(f))
    nods=[x for x in d['findings'] if x['type']=='nodule']
    if not nods: continue
    subprocess.run(['dcmj2pnm','--write-png','--use-window','1',f.replace('labels','images').replace('.json','.dcm'),'/tmp/pv/t.png'],capture_output=True)
    img=np.asarray(Image.open('/tmp/pv/t.png').convert('L'),dtype=float)
    for x in nods: out.append((x['diameter_mm'],contrast(img,x['box'])))
out=np.array(out)
for lo,hi in [(5,10),(10,20),(20,30)]:
    m=(out[:,0]>=lo)&(out[:,0]<hi)
    print('inserted',lo,hi,m.sum(), np.round(np.percentile(out[m,1],[25,50,75]),3) if m.sum() else '')

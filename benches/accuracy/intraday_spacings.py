#!/usr/bin/env python3
"""Intraday bars at other spacings, and markets with no sessions.

Like `intraday.py` (three volatility levels, one state a day, a chain that stays with
probability 0.95), for hourly (7 a session) and 5-minute (78) equity bars with overnight
gaps and the U-shaped profile, and 24/7 markets (15-minute and hourly bars, a sine-shaped
daily cycle of volatility, no gaps). Reports volatility right on the last 70% and switches
a day, four seeds each (98610-98613; truth ~0.065 a day).

    python3 benches/accuracy/intraday_spacings.py [PATH_TO_REGIME]
"""
import os, subprocess, sys, tempfile
import numpy as np, pandas as pd
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REG = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "regime")
NAMES={"low":0,"medium":1,"high":2}
def bars(seed, per, step_min, days=250, overnight=True, season=True, crypto=False):
    rng=np.random.default_rng(seed)
    st=np.zeros(days,int)
    for d in range(1,days):
        st[d]=st[d-1] if rng.random()<0.95 else rng.choice([x for x in range(3) if x!=st[d-1]])
    sday=np.array([0.007,0.014,0.028])[st]
    m=np.arange(per); x=m*(390/per)
    f=1+1.5*np.exp(-x/30)+0.8*np.exp(-(389-x)/30) if season else np.ones(per)
    if crypto: f = 1 + 0.5*np.sin(2*np.pi*m/per)  # daily cycle
    f=f/np.sqrt(np.mean(f**2)); n=days*per
    smin=(sday[:,None]/np.sqrt(per)*f[None,:]).ravel(); steps=20
    sub=rng.standard_normal((n,steps))*(smin/np.sqrt(steps))[:,None]
    if overnight and not crypto: sub[::per,0]+=rng.standard_t(4,days)/np.sqrt(2)*0.5*sday
    path=np.cumsum(sub.ravel()).reshape(n,steps); p=lambda z:100*np.exp(z)
    vol=rng.lognormal(8,0.5,n)*np.repeat(np.array([1,1.3,1.8])[st],per)*np.tile(f**1.5,days)
    if crypto:
        dates=pd.date_range("2020-01-01",periods=days,freq="D"); start=np.timedelta64(0,'s')
    else:
        dates=pd.bdate_range("2020-01-02",periods=days); start=np.timedelta64(9*3600+30*60,'s')
    ts=(dates.values[:,None]+start+(m*step_min*60).astype('timedelta64[s]')[None,:]).ravel()
    return pd.DataFrame(dict(timestamp=pd.to_datetime(ts),open=p(path[:,0]),high=p(path.max(1)),low=p(path.min(1)),close=p(path[:,-1]),volume=vol)), np.repeat(st,per)
def main():
    reg = sys.argv[1] if len(sys.argv)>1 else REG
    with tempfile.TemporaryDirectory() as tmp:
        for name,per,step,crypto in (("hourly equity",7,60,False),("5-min equity",78,5,False),("crypto 15-min 24/7",96,15,True),("crypto hourly 24/7",24,60,True)):
            res=[]
            for seed in (98610,98611,98612,98613):
                df,st=bars(seed,per,step,crypto=crypto)
                df.to_csv(f"{tmp}/i.csv",index=False)
                subprocess.run([reg,"detect","--input",f"{tmp}/i.csv","--output",f"{tmp}/o.csv"],check=True,capture_output=True)
                v=pd.read_csv(f"{tmp}/o.csv")["volatility"].map(NAMES).to_numpy(); n=len(v); t=slice(int(.3*n),n)
                res.append((np.mean(v[t]==st[t]), np.sum(v[1:]!=v[:-1])/(n/per)))
            print(f"{name:20} right {' '.join(f'{a:.3f}' for a,_ in res)}  switches/day {' '.join(f'{b:.2f}' for _,b in res)}")


if __name__ == "__main__":
    main()

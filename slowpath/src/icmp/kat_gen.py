#!/usr/bin/env python3
# The known answers of slowpath/src/icmp/tests.rs and the icmp fuzz seeds, worked out
# independently of the Rust code (its own RFC 1071 checksum). `python3 kat_gen.py [NAME]`
# prints NAME HEX lines; each output frame was checked with tshark (checksums, extension).
# Independent generator of the ICMP error KATs (own RFC 1071 checksum), for slowpath icmp tests.
import struct, sys
def cs(b):
    if len(b)%2: b+=b'\0'
    s=sum(int.from_bytes(b[i:i+2],'big') for i in range(0,len(b),2))
    while s>0xffff: s=(s&0xffff)+(s>>16)
    return (~s)&0xffff
def ip(src,dst,proto,payload,ttl,tos=0,ident=0,flags=0):
    h=bytearray(struct.pack('!BBHHHBBH4s4s',0x45,tos,20+len(payload),ident,flags,ttl,proto,0,bytes(src),bytes(dst)))
    h[10:12]=cs(bytes(h)).to_bytes(2,'big')
    return bytes(h)+payload
def mac(s): return bytes.fromhex(s.replace(':',''))
def lse(label,tc,s,ttl): return struct.pack('!I',(label<<12)|(tc<<9)|(s<<8)|ttl)
def icmp(t,code,rest,data):
    m=bytearray(bytes([t,code,0,0])+rest+data); m[2:4]=cs(bytes(m)).to_bytes(2,'big'); return bytes(m)
def ext(stack):
    e=bytearray(bytes([0x20,0,0,0])+struct.pack('!HBB',4+len(stack),1,1)+stack); e[2:4]=cs(bytes(e)).to_bytes(2,'big'); return bytes(e)
SUB=[198,18,1,10]; SRV=[198,18,1,2]; GW=[198,18,1,1]
def probe(ttl, src=SUB, dst=SRV):
    udp=struct.pack('!HHHH',40000,33434,8+32,0)+bytes(range(0x40,0x60))
    return ip(src,dst,17,udp,ttl,ident=0x4d2e)
def big(ttl=64, src=SUB, dst=SRV):
    echo=icmp(8,0,struct.pack('!HH',0x77,1),bytes(i%256 for i in range(1472)))
    return ip(src,dst,1,echo,ttl,ident=0x1234,flags=0x4000)
ACC=mac('02:00:00:00:00:a0'); CORE=mac('02:00:00:00:00:c1'); HOFF=mac('02:00:00:00:00:d2'); CORE2=mac('02:00:00:00:00:c3')
SUBMAC=mac('02:aa:00:00:00:01'); ROUTER=mac('02:00:00:00:0e:01'); PEER=mac('02:00:00:00:09:09')
TE=lambda data, words=0: icmp(11,0,bytes([0,words,0,0]),data)
FN=lambda mtu,data: icmp(3,4,bytes([0,0])+struct.pack('!H',mtu),data)
out={}
# 1 headend: subscriber probe TTL 1, untagged
p=probe(1)
out['head_ttl_in']=ACC+SUBMAC+b'\x08\x00'+p
out['head_ttl_out']=SUBMAC+ACC+b'\x08\x00'+ip(GW,SUB,1,TE(p),64,tos=0xc0,ident=7)
# 2 headend frag needed: 1500 DF echo; quote 548
b=big()
out['head_fn_in']=ACC+SUBMAC+b'\x08\x00'+b
out['head_fn_out']=SUBMAC+ACC+b'\x08\x00'+ip(GW,SUB,1,FN(1496,b[:548]),64,tos=0xc0,ident=7)
# 3 transit: label 2001 TTL 1 -> swap to 2002 out port 3, src 10.0.12.2, ext
p=probe(2)
st=lse(2001,0,1,1)
q=p+bytes(128-len(p))
out['transit_in']=CORE+PEER+b'\x88\x47'+st+p
out['transit_out']=mac('02:00:00:00:03:01')+CORE2+b'\x88\x47'+lse(2002,0,1,64)+ip([10,0,12,2],SUB,1,TE(q+ext(st),32),64,tos=0xc0,ident=7)
# 4 tailend pop: label 5001 TTL 1 -> hand-off port 2 VLAN 101, src 198.18.1.254
p=probe(3)
st=lse(5001,0,1,1)
q=p+bytes(128-len(p))
out['tail_pop_in']=CORE+PEER+b'\x88\x47'+st+p
out['tail_pop_out']=ROUTER+HOFF+b'\x81\x00\x00\x65\x08\x00'+ip([198,18,254,1],SUB,1,TE(q+ext(st),32),64,tos=0xc0,ident=7)
# 5 tailend downstream frag needed: from ISP router on VLAN 101, 1500 DF, mtu 1496, from the hand-off address
b=big(src=SRV,dst=SUB)
out['tail_fn_in']=HOFF+ROUTER+b'\x81\x00\x00\x65\x08\x00'+b
out['tail_fn_out']=ROUTER+HOFF+b'\x81\x00\x00\x65\x08\x00'+ip([198,18,254,1],SRV,1,FN(1496,b[:548]),64,tos=0xc0,ident=7)
# 6 headend pop (deliver): label 4001 TTL 1, from the internet 8.8.8.8 -> subscriber; via ISP upstream label 1001 port 1
p=probe(5,src=[8,8,8,8],dst=SUB)
st=lse(4001,0,1,1)
q=p+bytes(128-len(p))
out['head_pop_in']=CORE+PEER+b'\x88\x47'+st+p
out['head_pop_out']=mac('02:00:00:00:01:01')+CORE+b'\x88\x47'+lse(1001,0,1,64)+ip(GW,[8,8,8,8],1,TE(q+ext(st),32),64,tos=0xc0,ident=7)
# 7 headend QinQ subscriber 198.18.1.11 on port 0, 100/200
p=probe(1,src=[198,18,1,11])
CC=mac('02:cc:00:00:00:03')
tags=b'\x88\xa8\x00\x64\x81\x00\x00\xc8'
out['head_qinq_in']=ACC+CC+tags+b'\x08\x00'+p
out['head_qinq_out']=CC+ACC+tags+b'\x08\x00'+ip(GW,[198,18,1,11],1,TE(p),64,tos=0xc0,ident=7)
which=sys.argv[1] if len(sys.argv)>1 else None
for k,v in out.items():
    if which is None or k==which: print(k, v.hex())
# 8 tailend downstream TTL: from the ISP router on VLAN 101, 8.8.8.8 -> subscriber with TTL 1
p=probe(1,src=[8,8,8,8],dst=SUB)
out2={}
out2['tail_down_ttl_in']=HOFF+ROUTER+b'\x81\x00\x00\x65\x08\x00'+p
out2['tail_down_ttl_out']=ROUTER+HOFF+b'\x81\x00\x00\x65\x08\x00'+ip([198,18,254,1],[8,8,8,8],1,TE(p),64,tos=0xc0,ident=7)
for k,v in out2.items():
    if which is None or k==which: print(k, v.hex())

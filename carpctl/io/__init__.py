"""Linux I/O adapters of the embedded CARP engine.

Thin, synchronous and non-blocking wrappers around the kernel, one job per
module, so that the asyncio driver can call them inline:

* ``carp_socket`` -- raw IP protocol 112 sockets (send and drain adverts);
* ``addresses`` -- add/remove the virtual addresses (netlink);
* ``links`` -- interface state, MAC, own addresses, and a link watcher;
* ``announce`` -- gratuitous ARP and unsolicited Neighbour Advertisements;
* ``rtnl`` -- the one small rtnetlink request helper the others share
  (pyroute2 is the project's only netlink user, and only here).

Virtual MAC (00:00:5e:00:01:<vhid>) is not implemented: like ucarp, the
virtual addresses are owned by the interface's real MAC, which every CARP
peer accepts (protocol reference 1.5). ``announce`` already takes any MAC,
for when a macvlan child with the virtual MAC carries the addresses.

Every object is bound to the network namespace of the thread that created
it, which is how the tests drive them inside throwaway namespaces.
"""

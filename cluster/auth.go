package cluster

func (c *Cluster) startAuth() error { return nil }
func (c *Cluster) stopAuth()        {}
func (c *Cluster) peerUp(string)    {}

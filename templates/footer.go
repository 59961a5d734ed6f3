package templates

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	htmltemplate "html/template"
	"strings"
	"sync/atomic"
	"text/template/parse"
)

// A layout's footer (company, postal address, unsubscribe and
// view-in-browser links) is the same for every message of a sender but
// for the two URLs, and html/template spends as long on its eight escaper
// calls as on a newsletter's merge fields. So the layout is split at its
// {{template "html" .}} call: the head and the content are executed per
// message; the footer once per sender, with sentinel URLs that each
// message replaces by its own. Compile keeps the split only when it
// renders the sample message byte for byte like the whole layout, which
// also proves that the escapers leave the URLs unchanged.

// contentCall is where a layout calls the content template.
const contentCall = `{{template "html" .}}`

// splitLayout is a layout cut at its content call.
type splitLayout struct {
	head      *htmltemplate.Template // the layout up to the content call, and the content
	footer    *htmltemplate.Template // the rest of the layout
	sentinelU string                 // stands for the unsubscribe URL in the footer
	sentinelV string                 // stands for the view-in-browser URL
	cache     atomic.Pointer[footerCache]
}

// footerCache is the footer rendered for one sender, cut at the
// sentinels.
type footerCache struct {
	sender SenderData
	parts  []footerPart
}

// footerPart is footer text followed by a URL (unsubscribe when
// unsubscribe is true, view-in-browser otherwise), or by nothing in the
// last part (last true).
type footerPart struct {
	text        []byte
	unsubscribe bool
	last        bool
}

// newSplitLayout cuts layoutSrc at its content call, or returns nil when
// the layout cannot be split: no single content call, or a footer that
// uses anything but the sender and the two URLs.
func newSplitLayout(layoutSrc, src string, funcs map[string]any) *splitLayout {
	if strings.Count(layoutSrc, contentCall) != 1 {
		return nil
	}
	headSrc, footerSrc, _ := strings.Cut(layoutSrc, contentCall)
	head, err := htmltemplate.New("head").Funcs(funcs).Parse(headSrc + contentCall)
	if err != nil {
		return nil
	}
	if _, err := head.New("html").Parse(src); err != nil {
		return nil
	}
	footer, err := htmltemplate.New("footer").Funcs(funcs).Parse(footerSrc)
	if err != nil || !senderOnly(footer.Tree.Root) {
		return nil
	}
	var r [12]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil
	}
	// Letters and digits pass every escaper unchanged.
	nonce := hex.EncodeToString(r[:])
	return &splitLayout{head: head, footer: footer, sentinelU: "funnelunsubscribe" + nonce, sentinelV: "funnelview" + nonce}
}

// senderOnly reports whether a footer's actions print only sender fields
// and the two URLs, so that its output depends on nothing else.
func senderOnly(list *parse.ListNode) bool {
	for _, n := range list.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
		case *parse.ActionNode:
			if len(n.Pipe.Decl) > 0 || len(n.Pipe.Cmds) != 1 || len(n.Pipe.Cmds[0].Args) != 1 {
				return false
			}
			f, ok := n.Pipe.Cmds[0].Args[0].(*parse.FieldNode)
			if !ok {
				return false
			}
			switch id := f.Ident; {
			case len(id) == 2 && id[0] == "Sender":
			case len(id) == 1 && (id[0] == "UnsubscribeURL" || id[0] == "ViewInBrowserURL"):
			default:
				return false
			}
		default:
			return false
		}
	}
	return true
}

// appendFooter appends the footer for d's sender and URLs.
func (s *splitLayout) appendFooter(dst []byte, d *Data, publicURL string) ([]byte, error) {
	fc := s.cache.Load()
	if fc == nil || fc.sender != d.Sender {
		var err error
		if fc, err = s.renderFooter(d.Sender, publicURL); err != nil {
			return dst, err
		}
		s.cache.Store(fc)
	}
	for _, p := range fc.parts {
		dst = append(dst, p.text...)
		switch {
		case p.last:
		case p.unsubscribe:
			dst = append(dst, d.UnsubscribeURL...)
		default:
			dst = append(dst, d.ViewInBrowserURL...)
		}
	}
	return dst, nil
}

// renderFooter executes the footer for one sender with sentinel URLs and
// cuts it at them.
func (s *splitLayout) renderFooter(sender SenderData, publicURL string) (*footerCache, error) {
	u, v := publicURL+PathUnsubscribe+s.sentinelU, publicURL+PathView+s.sentinelV
	var b bytes.Buffer
	if err := s.footer.Execute(&b, &Data{Sender: sender, UnsubscribeURL: u, ViewInBrowserURL: v}); err != nil {
		return nil, err
	}
	fc := &footerCache{sender: sender}
	out := b.Bytes()
	for {
		iu, iv := bytes.Index(out, []byte(u)), bytes.Index(out, []byte(v))
		switch {
		case iu < 0 && iv < 0:
			fc.parts = append(fc.parts, footerPart{text: out, last: true})
			return fc, nil
		case iv < 0 || iu >= 0 && iu < iv:
			fc.parts = append(fc.parts, footerPart{text: out[:iu], unsubscribe: true})
			out = out[iu+len(u):]
		default:
			fc.parts = append(fc.parts, footerPart{text: out[:iv]})
			out = out[iv+len(v):]
		}
	}
}

// keepSplit drops c's split layout unless it renders like the whole
// layout: the same bytes as whole, the sample input's HTML rendered with
// the whole layout.
func (c *Compiled) keepSplit(whole string) {
	if c.split == nil {
		return
	}
	if m, err := c.Render(SampleInput()); err != nil || m.HTML != whole {
		c.split = nil
	}
}
